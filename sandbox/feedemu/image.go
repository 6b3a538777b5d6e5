package feedemu

import (
	"bytes"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"math"
	"sync"
)

// Size of the generated pictures: 2:1, as Discord shows an embed's image.
const (
	imageWidth  = 640
	imageHeight = 320
)

// imageCache keeps the pictures drawn so far; a name always draws the same
// picture, so there is nothing to invalidate.
type imageCache struct {
	mu    sync.Mutex
	drawn map[string][]byte
}

// maxCachedImages bounds the cache; past it pictures are drawn per request.
const maxCachedImages = 64

func (c *imageCache) get(key string) []byte {
	c.mu.Lock()
	body, found := c.drawn[key]
	c.mu.Unlock()
	if found {
		return body
	}
	body = drawBanner(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drawn == nil {
		c.drawn = map[string][]byte{}
	}
	if len(c.drawn) < maxCachedImages {
		c.drawn[key] = body
	}
	return body
}

// drawBanner draws a PNG banner for key: a diagonal gradient between two
// colours picked from the key, with a few soft discs, so that different
// posts get recognisably different pictures without any asset files.
func drawBanner(key string) []byte {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	seed := h.Sum64()
	hue := float64(seed%360) / 360
	from := hsv(hue, 0.55, 0.95)
	to := hsv(math.Mod(hue+0.18, 1), 0.75, 0.55)

	type disc struct{ x, y, r float64 }
	discs := make([]disc, 3)
	for i := range discs {
		v := seed >> (i * 16)
		discs[i] = disc{
			x: float64(v % imageWidth),
			y: float64((v >> 8) % imageHeight),
			r: 50 + float64((v>>4)%90),
		}
	}

	img := image.NewRGBA(image.Rect(0, 0, imageWidth, imageHeight))
	for y := range imageHeight {
		for x := range imageWidth {
			t := (float64(x)/imageWidth + float64(y)/imageHeight) / 2
			c := mix(from, to, t)
			for _, d := range discs {
				dist := math.Hypot(float64(x)-d.x, float64(y)-d.y)
				if dist < d.r {
					c = mix(c, color.RGBA{255, 255, 255, 255}, 0.18*(1-dist/d.r))
				}
			}
			img.SetRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	_ = enc.Encode(&buf, img) // writing to memory does not fail
	return buf.Bytes()
}

func mix(a, b color.RGBA, t float64) color.RGBA {
	f := func(x, y uint8) uint8 { return uint8(math.Round(float64(x)*(1-t) + float64(y)*t)) }
	return color.RGBA{f(a.R, b.R), f(a.G, b.G), f(a.B, b.B), 255}
}

// hsv converts a colour from hue, saturation and value (each 0..1).
func hsv(h, s, v float64) color.RGBA {
	i := math.Floor(h * 6)
	f := h*6 - i
	p, q, t := v*(1-s), v*(1-f*s), v*(1-(1-f)*s)
	var r, g, b float64
	switch int(i) % 6 {
	case 0:
		r, g, b = v, t, p
	case 1:
		r, g, b = q, v, p
	case 2:
		r, g, b = p, v, t
	case 3:
		r, g, b = p, q, v
	case 4:
		r, g, b = t, p, v
	default:
		r, g, b = v, p, q
	}
	to8 := func(x float64) uint8 { return uint8(math.Round(x * 255)) }
	return color.RGBA{to8(r), to8(g), to8(b), 255}
}
