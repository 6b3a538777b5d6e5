package kb

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
)

//go:embed sample
var sampleFS embed.FS

// Sample returns the knowledge base embedded in the binary: the help center
// of Skyforge Legends, a fictional mobile game, in English, Korean,
// Japanese, Romanian, Indonesian and Brazilian Portuguese. Article IDs are
// paths such as "en/account/delete-account".
func Sample() ([]Article, error) {
	sub, err := fs.Sub(sampleFS, "sample")
	if err != nil {
		return nil, fmt.Errorf("open sample knowledge base: %w", err)
	}
	arts, warns, err := LoadFS(sub, nil)
	if err != nil {
		return nil, fmt.Errorf("load sample knowledge base: %w", err)
	}
	if len(warns) > 0 {
		return nil, fmt.Errorf("sample knowledge base: %w", errors.Join(warns...))
	}
	return arts, nil
}
