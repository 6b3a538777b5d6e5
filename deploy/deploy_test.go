// Package deploy_test checks the deployment files: the Helm chart under helm/flexcord (linted and
// rendered by Helm itself, built from its module with `go run`) and compose.yaml.
//
// The Helm tests run `go run helm.sh/helm/v3/cmd/helm@v3.22.0`. The first run downloads Helm's
// module from the Go module proxy and compiles it (minutes on two cores); later runs reuse the
// build cache. They are skipped with -short.
package deploy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	helmCommand = "helm.sh/helm/v3/cmd/helm@v3.22.0"
	chartDir    = "helm/flexcord"
	release     = "flexcord"
	// The in-cluster address of a Temporal installed by Temporal's chart as release "temporal".
	selfHostedAddress = "temporal-frontend.temporal.svc.cluster.local:7233"
	// Helm built by `go run` lacks the link-time flags of its releases that set the Kubernetes
	// version `helm template` assumes, so it assumes v1.20.0, below the chart's kubeVersion
	// (>= 1.28, for the gateway's pod-index label). Templates are rendered for this version.
	kubeVersion = "1.32.0"
)

// secretNames are variables that must only ever come from a Secret.
var secretNames = []string{"DISCORD_TOKEN", "TWILIO_AUTH_TOKEN", "TWILIO_API_SECRET", "TEMPORAL_API_KEY", "TEMPORAL_TLS_CLIENT_KEY_DATA", "FLEXCORD_S3_ACCESS_KEY", "FLEXCORD_S3_SECRET_KEY"}

// blobsPath is the blob store's default directory in the image (./data/blobs from the working
// directory /home/nonroot, see Dockerfile), where the chart and compose.yaml mount its volume.
const blobsPath = "/home/nonroot/data/blobs"

func isSecretName(name string) bool {
	return slices.Contains(secretNames, name) || strings.HasPrefix(name, "FLEXCORD_FEED_SECRET_")
}

// ---------------------------------------------------------------------------------------------
// Running Helm

var (
	helmHomeOnce sync.Once
	helmHome     string
	helmHomeErr  error
)

// helm runs the Helm CLI at the pinned version from this directory (deploy/), with its cache,
// config and data directories in a temporary directory, and returns stdout and stderr.
func helm(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds Helm from source with go run; skipped with -short")
	}
	goBin, lookErr := exec.LookPath("go")
	if lookErr != nil {
		t.Skipf("no go command in PATH to run Helm with: %v", lookErr)
	}
	helmHomeOnce.Do(func() { helmHome, helmHomeErr = os.MkdirTemp("", "flexcord-helm-") })
	if helmHomeErr != nil {
		t.Fatal(helmHomeErr)
	}
	cmd := exec.Command(goBin, append([]string{"run", helmCommand}, args...)...)
	cmd.Env = helmEnv(helmHome)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// helmEnv is the test's environment for `go run` of Helm: the local toolchain, no workspace, no
// -mod flag (refused with the path@version form), and Helm's own directories kept out of $HOME.
func helmEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		switch {
		case name == "GOTOOLCHAIN", name == "GOWORK", strings.HasPrefix(name, "HELM_"):
			continue
		case name == "GOFLAGS":
			var keep []string
			for _, f := range strings.Fields(value) {
				if !strings.HasPrefix(f, "-mod=") {
					keep = append(keep, f)
				}
			}
			kv = "GOFLAGS=" + strings.Join(keep, " ")
		}
		env = append(env, kv)
	}
	return append(env,
		"GOTOOLCHAIN=local",
		"GOWORK=off",
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if helmHome != "" {
		os.RemoveAll(helmHome)
	}
	os.Exit(code)
}

// render runs `helm template` and parses every document it prints.
func render(t *testing.T, args ...string) manifests {
	t.Helper()
	out, errOut, err := helm(t, append([]string{"template", release, chartDir, "--namespace", "support", "--kube-version", kubeVersion}, args...)...)
	if err != nil {
		t.Fatalf("helm template %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	docs, err := parseDocuments(out)
	if err != nil {
		t.Fatalf("helm template %s printed YAML that does not parse: %v\n%s", strings.Join(args, " "), err, out)
	}
	return docs
}

// renderFails runs `helm template` expecting it to fail, and returns what Helm said.
func renderFails(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := helm(t, append([]string{"template", release, chartDir, "--kube-version", kubeVersion}, args...)...)
	if err == nil {
		t.Fatalf("helm template %s succeeded, want an error; it printed:\n%s", strings.Join(args, " "), out)
	}
	return errOut
}

// renderNotes renders the chart's NOTES.txt with those values and returns the text `helm install`
// would print. `helm template` renders NOTES.txt but does not print it, and `helm install
// --dry-run` needs a cluster, so it renders a copy of the chart with one more template: a
// ConfigMap whose data is NOTES.txt, unchanged, rendered by the same engine with the same values.
func renderNotes(t *testing.T, args ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "flexcord")
	if err := os.CopyFS(dir, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	notes, err := os.ReadFile(filepath.Join(dir, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	const name = "templates/zz-test-notes.yaml"
	wrapper := `{{- define "flexcord-test.notes" }}` + string(notes) + `{{ end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: flexcord-test-notes
data:
  NOTES.txt: {{ include "flexcord-test.notes" . | toJson }}
`
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), []byte(wrapper), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := helm(t, append([]string{"template", release, dir, "--namespace", "support", "--kube-version", kubeVersion, "--show-only", name}, args...)...)
	if err != nil {
		t.Fatalf("helm template (NOTES.txt) %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	docs, err := parseDocuments(out)
	if err != nil || len(docs) != 1 {
		t.Fatalf("rendering NOTES.txt printed %d documents (%v):\n%s", len(docs), err, out)
	}
	return str(dig(docs[0], "data", "NOTES.txt"))
}

// ---------------------------------------------------------------------------------------------
// Rendered objects

type object map[string]any

type manifests []object

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

func parseDocuments(s string) (manifests, error) {
	var docs manifests
	for _, part := range docSeparator.Split(s, -1) {
		var o object
		if err := yaml.Unmarshal([]byte(part), &o); err != nil {
			return nil, fmt.Errorf("%w in document:\n%s", err, part)
		}
		if len(o) > 0 {
			docs = append(docs, o)
		}
	}
	return docs, nil
}

// dig walks maps by key and lists by index; nil when the path does not exist.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				if o, isObj := v.(object); isObj {
					m, ok = o, true
				}
			}
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k < 0 || k >= len(l) {
				return nil
			}
			v = l[k]
		default:
			panic(fmt.Sprintf("dig: bad path element %v", p))
		}
	}
	return v
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func (o object) kind() string { return str(o["kind"]) }
func (o object) name() string { return str(dig(o, "metadata", "name")) }

// find returns the object of that kind and name, or fails.
func (ms manifests) find(t *testing.T, kind, name string) object {
	t.Helper()
	for _, o := range ms {
		if o.kind() == kind && o.name() == name {
			return o
		}
	}
	t.Fatalf("no %s %q rendered; got %v", kind, name, ms.names())
	return nil
}

func (ms manifests) has(kind, name string) bool {
	for _, o := range ms {
		if o.kind() == kind && o.name() == name {
			return true
		}
	}
	return false
}

func (ms manifests) ofKind(kind string) []object {
	var out []object
	for _, o := range ms {
		if o.kind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func (ms manifests) names() []string {
	var out []string
	for _, o := range ms {
		out = append(out, o.kind()+"/"+o.name())
	}
	return out
}

// workloads are the Deployments and StatefulSets, whose pods run flexcord.
func (ms manifests) workloads() []object {
	return append(ms.ofKind("Deployment"), ms.ofKind("StatefulSet")...)
}

// container is the first container of a workload's pod template.
func container(t *testing.T, workload object) map[string]any {
	t.Helper()
	c, ok := dig(workload, "spec", "template", "spec", "containers", 0).(map[string]any)
	if !ok {
		t.Fatalf("%s %s has no container", workload.kind(), workload.name())
	}
	return c
}

// envVar returns the container's env entry of that name, or nil.
func envVar(c map[string]any, name string) map[string]any {
	for _, e := range list(c["env"]) {
		if m, ok := e.(map[string]any); ok && m["name"] == name {
			return m
		}
	}
	return nil
}

func secretRefs(c map[string]any) []string {
	var out []string
	for _, e := range list(c["envFrom"]) {
		if name := str(dig(e, "secretRef", "name")); name != "" {
			out = append(out, name)
		}
	}
	return out
}

func configMapRefs(c map[string]any) []string {
	var out []string
	for _, e := range list(c["envFrom"]) {
		if name := str(dig(e, "configMapRef", "name")); name != "" {
			out = append(out, name)
		}
	}
	return out
}

// checkNoSecretValues fails when a secret could have been rendered: a Secret object, a secret
// variable in the ConfigMap, or a secret variable with a literal value in any container.
func checkNoSecretValues(t *testing.T, ms manifests) {
	t.Helper()
	for _, o := range ms {
		if o.kind() == "Secret" {
			t.Errorf("the chart rendered Secret %s; secrets must be referenced, never created from values", o.name())
		}
	}
	for _, cm := range ms.ofKind("ConfigMap") {
		for name := range dig(cm, "data").(map[string]any) {
			if isSecretName(name) {
				t.Errorf("ConfigMap %s holds secret variable %s", cm.name(), name)
			}
		}
	}
	for _, w := range ms.workloads() {
		for _, c := range list(dig(w, "spec", "template", "spec", "containers")) {
			for _, e := range list(dig(c, "env")) {
				name := str(dig(e, "name"))
				if isSecretName(name) && dig(e, "value") != nil {
					t.Errorf("%s %s: %s has a literal value", w.kind(), w.name(), name)
				}
			}
		}
	}
}

// blobVolume returns the volume a workload's container mounts at blobsPath, or nil when it mounts
// none there; it fails when the mount is read-only or names no volume of the pod.
func blobVolume(t *testing.T, w object) map[string]any {
	t.Helper()
	var name string
	for _, m := range list(dig(container(t, w), "volumeMounts")) {
		if str(dig(m, "mountPath")) != blobsPath {
			continue
		}
		if name != "" {
			t.Errorf("%s %s mounts two volumes at %s", w.kind(), w.name(), blobsPath)
		}
		name = str(dig(m, "name"))
		if dig(m, "readOnly") == true || dig(m, "subPath") != nil {
			t.Errorf("%s %s mounts %s read-only or a subPath of it: %v", w.kind(), w.name(), blobsPath, m)
		}
	}
	if name == "" {
		return nil
	}
	for _, v := range list(dig(w, "spec", "template", "spec", "volumes")) {
		if str(dig(v, "name")) == name {
			m, _ := v.(map[string]any)
			return m
		}
	}
	t.Errorf("%s %s mounts volume %q at %s but has no such volume", w.kind(), w.name(), name, blobsPath)
	return nil
}

// blobEnv returns the names of a container's variables that choose the blob store.
func blobEnv(c map[string]any) []string {
	var out []string
	for _, e := range list(c["env"]) {
		if name := str(dig(e, "name")); strings.HasPrefix(name, "FLEXCORD_S3_") || name == "FLEXCORD_BLOB_DIR" {
			out = append(out, name)
		}
	}
	return out
}

// checkBlobsWorkerOnly checks that only the worker is given the blob store: the ingress and
// gateway pods mount nothing at blobsPath and get no store variable, and the ConfigMap (read by
// every role) chooses no store either.
func checkBlobsWorkerOnly(t *testing.T, ms manifests) {
	t.Helper()
	for _, w := range ms.workloads() {
		if w.name() == "flexcord-worker" {
			continue
		}
		if v := blobVolume(t, w); v != nil {
			t.Errorf("%s %s mounts the blob store (%v); only the worker uses it", w.kind(), w.name(), v)
		}
		if names := blobEnv(container(t, w)); len(names) > 0 {
			t.Errorf("%s %s has blob store variables %v; only the worker uses the store", w.kind(), w.name(), names)
		}
	}
	for _, cm := range ms.ofKind("ConfigMap") {
		for name := range dig(cm, "data").(map[string]any) {
			if strings.HasPrefix(name, "FLEXCORD_S3_") || name == "FLEXCORD_BLOB_DIR" {
				t.Errorf("ConfigMap %s holds %s, which every role reads; the store is the worker's", cm.name(), name)
			}
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Helm: lint

func TestHelmLint(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		// Lint mode reports a missing required value as information only.
		{"default values", nil},
		{"default values with temporal.address", []string{"--set", "temporal.address=" + selfHostedAddress}},
		{"examples/values-cloud.yaml", []string{"-f", chartDir + "/examples/values-cloud.yaml"}},
		{"examples/values-selfhosted.yaml", []string{"-f", chartDir + "/examples/values-selfhosted.yaml"}},
		{"blobs in an existing claim", []string{"--set", "temporal.address=" + selfHostedAddress,
			"--set", "blobs.persistence.existingClaim=flexcord-transcripts"}},
		{"blobs in S3", []string{"--set", "temporal.address=" + selfHostedAddress,
			"--set", "blobs.s3.bucket=flexcord", "--set", "blobs.s3.existingSecret=flexcord-s3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out, errOut, err := helm(t, append([]string{"lint", chartDir, "--strict"}, c.args...)...)
			if err != nil {
				t.Fatalf("helm lint: %v\n%s%s", err, out, errOut)
			}
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Errorf("helm lint did not report success:\n%s", out)
			}
		})
	}
}

// ---------------------------------------------------------------------------------------------
// Helm: what the chart renders

func TestChartRequiresTemporalAddress(t *testing.T) {
	msg := renderFails(t)
	if !strings.Contains(msg, "temporal.address is required") {
		t.Errorf("helm template without temporal.address should name it; it said:\n%s", msg)
	}
}

func TestChartDefaults(t *testing.T) {
	ms := render(t, "--set", "temporal.address="+selfHostedAddress)

	for _, want := range []struct{ kind, name string }{
		{"ConfigMap", "flexcord"},
		{"ServiceAccount", "flexcord"},
		{"Deployment", "flexcord-worker"},
		{"Deployment", "flexcord-ingress"},
		{"Service", "flexcord-worker"},
		{"Service", "flexcord-ingress"},
		{"Service", "flexcord-gateway"},
		{"StatefulSet", "flexcord-gateway"},
		{"PodDisruptionBudget", "flexcord-worker"},
		{"PodDisruptionBudget", "flexcord-ingress"},
		{"PodDisruptionBudget", "flexcord-gateway"},
	} {
		ms.find(t, want.kind, want.name)
	}
	for _, kind := range []string{"HorizontalPodAutoscaler", "Ingress", "ServiceMonitor", "Secret"} {
		if got := ms.ofKind(kind); len(got) > 0 {
			t.Errorf("default values rendered a %s (%s); it should be off by default", kind, got[0].name())
		}
	}

	cm := ms.find(t, "ConfigMap", "flexcord")
	if got := str(dig(cm, "data", "TEMPORAL_ADDRESS")); got != selfHostedAddress {
		t.Errorf("ConfigMap TEMPORAL_ADDRESS = %q, want %q", got, selfHostedAddress)
	}
	if got := str(dig(cm, "data", "TEMPORAL_NAMESPACE")); got != "default" {
		t.Errorf("ConfigMap TEMPORAL_NAMESPACE = %q, want default", got)
	}
	if dig(cm, "data", "TEMPORAL_TLS") != nil {
		t.Error("TEMPORAL_TLS is set although no TLS was asked for")
	}

	worker := ms.find(t, "Deployment", "flexcord-worker")
	if got := str(dig(worker, "spec", "replicas")); got != "2" {
		t.Errorf("worker replicas = %s, want 2", got)
	}
	wc := container(t, worker)
	if got := list(wc["args"]); len(got) != 1 || got[0] != "worker" {
		t.Errorf("worker args = %v, want [worker]", got)
	}
	checkHTTP(t, "worker", wc, 8082)
	if got := str(dig(ms.find(t, "Service", "flexcord-worker"), "spec", "clusterIP")); got != "None" {
		t.Errorf("worker Service clusterIP = %q, want None (headless, for metrics only)", got)
	}

	ingress := ms.find(t, "Deployment", "flexcord-ingress")
	ic := container(t, ingress)
	if got := list(ic["args"]); len(got) != 1 || got[0] != "ingress" {
		t.Errorf("ingress args = %v, want [ingress]", got)
	}
	checkHTTP(t, "ingress", ic, 8080)
	svc := ms.find(t, "Service", "flexcord-ingress")
	if got := str(dig(svc, "spec", "ports", 0, "targetPort")); got != "http" {
		t.Errorf("ingress Service targetPort = %q, want http", got)
	}
	if got := str(dig(svc, "spec", "selector", "app.kubernetes.io/component")); got != "ingress" {
		t.Errorf("ingress Service selects component %q", got)
	}

	checkGateway(t, ms, 1)

	for _, w := range ms.workloads() {
		c := container(t, w)
		if refs := configMapRefs(c); !slices.Contains(refs, "flexcord") {
			t.Errorf("%s %s does not read the ConfigMap (envFrom %v)", w.kind(), w.name(), refs)
		}
		if refs := secretRefs(c); len(refs) > 0 {
			t.Errorf("%s %s reads Secrets %v although existingSecret is empty", w.kind(), w.name(), refs)
		}
		if got := dig(w, "spec", "template", "spec", "securityContext", "runAsNonRoot"); got != true {
			t.Errorf("%s %s: runAsNonRoot = %v", w.kind(), w.name(), got)
		}
		if got := dig(c, "securityContext", "readOnlyRootFilesystem"); got != true {
			t.Errorf("%s %s: readOnlyRootFilesystem = %v", w.kind(), w.name(), got)
		}
		if got := str(dig(c, "image")); got != "ghcr.io/flexcord/flexcord:0.1.0" {
			t.Errorf("%s %s: image %q, want the chart's appVersion as tag", w.kind(), w.name(), got)
		}
	}
	checkNoSecretValues(t, ms)
}

// checkGateway checks the one-pod-per-shard StatefulSet.
func checkGateway(t *testing.T, ms manifests, shards int) {
	t.Helper()
	gw := ms.find(t, "StatefulSet", "flexcord-gateway")
	if got := str(dig(gw, "spec", "replicas")); got != fmt.Sprint(shards) {
		t.Errorf("gateway StatefulSet replicas = %s, want shardCount %d", got, shards)
	}
	if got := str(dig(gw, "spec", "serviceName")); got != "flexcord-gateway" || !ms.has("Service", got) {
		t.Errorf("gateway serviceName = %q, want the rendered headless Service flexcord-gateway", got)
	}
	if got := str(dig(ms.find(t, "Service", "flexcord-gateway"), "spec", "clusterIP")); got != "None" {
		t.Errorf("gateway Service clusterIP = %q, want None (headless)", got)
	}
	c := container(t, gw)
	if got := list(c["args"]); len(got) != 1 || got[0] != "gateway" {
		t.Errorf("gateway args = %v, want [gateway]", got)
	}
	if got := str(dig(envVar(c, "DISCORD_SHARD_ID"), "valueFrom", "fieldRef", "fieldPath")); got != "metadata.labels['apps.kubernetes.io/pod-index']" {
		t.Errorf("gateway DISCORD_SHARD_ID comes from %q, want the pod-index label", got)
	}
	if got := str(dig(envVar(c, "DISCORD_SHARD_COUNT"), "value")); got != fmt.Sprint(shards) {
		t.Errorf("gateway DISCORD_SHARD_COUNT = %q, want %d", got, shards)
	}
	checkHTTP(t, "gateway", c, 8081)
}

// checkHTTP checks a role's port, its FLEXCORD_HTTP_ADDR and its probes: liveness on /healthz,
// readiness on /readyz, both on the named port.
func checkHTTP(t *testing.T, role string, c map[string]any, port int) {
	t.Helper()
	if got := str(dig(c, "ports", 0, "containerPort")); got != fmt.Sprint(port) || str(dig(c, "ports", 0, "name")) != "http" {
		t.Errorf("%s ports = %v, want http %d", role, c["ports"], port)
	}
	if got := str(dig(envVar(c, "FLEXCORD_HTTP_ADDR"), "value")); got != fmt.Sprintf(":%d", port) {
		t.Errorf("%s FLEXCORD_HTTP_ADDR = %q, want :%d", role, got, port)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if got := str(dig(c, probe, "httpGet", "path")); got != path {
			t.Errorf("%s %s path = %q, want %q", role, probe, got, path)
		}
		if got := str(dig(c, probe, "httpGet", "port")); got != "http" {
			t.Errorf("%s %s port = %q, want the named port http", role, probe, got)
		}
	}
}

func TestChartCloudExample(t *testing.T) {
	ms := render(t, "-f", chartDir+"/examples/values-cloud.yaml")

	// Autoscaled worker: an HPA on CPU, and no replicas in the Deployment to fight it.
	hpa := ms.find(t, "HorizontalPodAutoscaler", "flexcord-worker")
	if got := str(hpa["apiVersion"]); got != "autoscaling/v2" {
		t.Errorf("HPA apiVersion = %q, want autoscaling/v2", got)
	}
	if got := str(dig(hpa, "spec", "scaleTargetRef", "name")); got != "flexcord-worker" {
		t.Errorf("HPA scales %q", got)
	}
	if got := str(dig(hpa, "spec", "metrics", 0, "resource", "name")); got != "cpu" {
		t.Errorf("HPA metric = %q, want cpu", got)
	}
	if r := dig(ms.find(t, "Deployment", "flexcord-worker"), "spec", "replicas"); r != nil {
		t.Errorf("autoscaled worker Deployment still sets replicas = %v", r)
	}
	if ms.has("HorizontalPodAutoscaler", "flexcord-ingress") {
		t.Error("ingress HPA rendered although only the worker autoscales")
	}
	ms.find(t, "PodDisruptionBudget", "flexcord-worker")

	// The public entrance, its TLS, and the URL derived from it.
	ing := ms.find(t, "Ingress", "flexcord")
	if got := str(dig(ing, "spec", "ingressClassName")); got != "nginx" {
		t.Errorf("Ingress className = %q, want nginx", got)
	}
	if got := str(dig(ing, "spec", "rules", 0, "host")); got != "support.example.com" {
		t.Errorf("Ingress host = %q", got)
	}
	if got := str(dig(ing, "spec", "rules", 0, "http", "paths", 0, "backend", "service", "name")); got != "flexcord-ingress" {
		t.Errorf("Ingress backend = %q, want the ingress Service", got)
	}
	if got := str(dig(ing, "spec", "tls", 0, "secretName")); got != "support-example-com-tls" {
		t.Errorf("Ingress TLS secret = %q", got)
	}
	cm := ms.find(t, "ConfigMap", "flexcord")
	if got := str(dig(cm, "data", "FLEXCORD_PUBLIC_URL")); got != "https://support.example.com" {
		t.Errorf("FLEXCORD_PUBLIC_URL = %q, want it derived from the Ingress host", got)
	}
	if got := str(dig(cm, "data", "OTEL_EXPORTER_OTLP_ENDPOINT")); !strings.HasPrefix(got, "http://otel-collector") {
		t.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT = %q", got)
	}
	if got := str(dig(cm, "data", "TWILIO_FLEX_WORKFLOW_SID")); !strings.HasPrefix(got, "WW") {
		t.Errorf("config map lost TWILIO_FLEX_WORKFLOW_SID: %q", got)
	}

	sm := ms.find(t, "ServiceMonitor", "flexcord")
	if got := str(sm["apiVersion"]); got != "monitoring.coreos.com/v1" {
		t.Errorf("ServiceMonitor apiVersion = %q", got)
	}
	if got := fmt.Sprint(dig(sm, "spec", "selector", "matchExpressions", 0, "values")); got != "[worker ingress gateway]" {
		t.Errorf("ServiceMonitor selects components %s, want every role", got)
	}
	for _, svc := range ms.ofKind("Service") {
		if str(dig(svc, "spec", "ports", 0, "name")) != "http" {
			t.Errorf("Service %s has no port named http for the ServiceMonitor", svc.name())
		}
	}
	if got := str(dig(sm, "spec", "endpoints", 0, "path")); got != "/metrics" {
		t.Errorf("ServiceMonitor path = %q, want /metrics", got)
	}
	if got := str(dig(sm, "spec", "endpoints", 0, "port")); got != "http" {
		t.Errorf("ServiceMonitor port = %q, want http", got)
	}
	if got := str(dig(sm, "metadata", "labels", "release")); got != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor lacks the Prometheus selector label: %q", got)
	}

	checkGateway(t, ms, 2)

	// Secrets by reference only: every container reads the named Secret, and the API key comes
	// from its own Secret by key.
	for _, w := range ms.workloads() {
		c := container(t, w)
		if refs := secretRefs(c); !slices.Equal(refs, []string{"flexcord"}) {
			t.Errorf("%s %s envFrom secrets = %v, want [flexcord]", w.kind(), w.name(), refs)
		}
		key := envVar(c, "TEMPORAL_API_KEY")
		if got := str(dig(key, "valueFrom", "secretKeyRef", "name")) + "/" + str(dig(key, "valueFrom", "secretKeyRef", "key")); got != "flexcord-temporal/api-key" {
			t.Errorf("%s %s TEMPORAL_API_KEY from %q, want secret flexcord-temporal key api-key", w.kind(), w.name(), got)
		}
	}

	// Blobs in S3: the worker's variables, no volume.
	worker := ms.find(t, "Deployment", "flexcord-worker")
	wc := container(t, worker)
	if got := str(dig(envVar(wc, "FLEXCORD_S3_BUCKET"), "value")); got != "example-flexcord-transcripts" {
		t.Errorf("worker FLEXCORD_S3_BUCKET = %q", got)
	}
	if got := str(dig(envVar(wc, "FLEXCORD_S3_SECRET_KEY"), "valueFrom", "secretKeyRef", "name")); got != "flexcord-s3" {
		t.Errorf("worker FLEXCORD_S3_SECRET_KEY from Secret %q, want flexcord-s3", got)
	}
	if v := blobVolume(t, worker); v != nil {
		t.Errorf("worker mounts %v at %s although blobs go to S3", v, blobsPath)
	}
	checkBlobsWorkerOnly(t, ms)
	checkNoSecretValues(t, ms)
}

func TestChartSelfHostedExample(t *testing.T) {
	ms := render(t, "-f", chartDir+"/examples/values-selfhosted.yaml")

	cm := ms.find(t, "ConfigMap", "flexcord")
	want := map[string]string{
		"TEMPORAL_ADDRESS":                 selfHostedAddress,
		"TEMPORAL_NAMESPACE":               "support",
		"TEMPORAL_TLS":                     "true",
		"TEMPORAL_TLS_CLIENT_CERT_PATH":    "/etc/flexcord/temporal-tls/client/tls.crt",
		"TEMPORAL_TLS_CLIENT_KEY_PATH":     "/etc/flexcord/temporal-tls/client/tls.key",
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH": "/etc/flexcord/temporal-tls/ca/ca.crt",
		"TEMPORAL_TLS_SERVER_NAME":         "temporal-frontend.temporal",
		"FLEXCORD_PUBLIC_URL":              "https://support.example.com",
	}
	for name, value := range want {
		if got := str(dig(cm, "data", name)); got != value {
			t.Errorf("ConfigMap %s = %q, want %q", name, got, value)
		}
	}
	if ms.has("Ingress", "flexcord") || len(ms.ofKind("ServiceMonitor")) > 0 {
		t.Error("Ingress or ServiceMonitor rendered although the example leaves them off")
	}
	if got := str(dig(ms.find(t, "Deployment", "flexcord-worker"), "spec", "replicas")); got != "3" {
		t.Errorf("worker replicas = %s, want 3", got)
	}

	// Each pod mounts the client certificate and the CA where the paths above point.
	for _, w := range ms.workloads() {
		spec := dig(w, "spec", "template", "spec")
		volumes := map[string]any{}
		for _, v := range list(dig(spec, "volumes")) {
			volumes[str(dig(v, "name"))] = v
		}
		if got := str(dig(volumes["temporal-client-cert"], "secret", "secretName")); got != "flexcord-temporal-client" {
			t.Errorf("%s %s: client certificate volume from %q", w.kind(), w.name(), got)
		}
		if got := str(dig(volumes["temporal-server-ca"], "secret", "secretName")); got != "temporal-ca" {
			t.Errorf("%s %s: server CA volume from %q", w.kind(), w.name(), got)
		}
		if dig(volumes["kb"], "configMap", "name") != "flexcord-kb" {
			t.Errorf("%s %s: extraVolumes not applied", w.kind(), w.name())
		}
		mounts := map[string]string{}
		for _, m := range list(dig(container(t, w), "volumeMounts")) {
			mounts[str(dig(m, "name"))] = str(dig(m, "mountPath"))
		}
		for name, path := range map[string]string{
			"temporal-client-cert": "/etc/flexcord/temporal-tls/client",
			"temporal-server-ca":   "/etc/flexcord/temporal-tls/ca",
			"tmp":                  "/tmp",
			"kb":                   "/srv/flexcord/kb",
		} {
			if mounts[name] != path {
				t.Errorf("%s %s: volume %s mounted at %q, want %q", w.kind(), w.name(), name, mounts[name], path)
			}
		}
		if got := str(dig(spec, "nodeSelector", "kubernetes.io/os")); got != "linux" {
			t.Errorf("%s %s: nodeSelector not applied", w.kind(), w.name())
		}
		if envVar(container(t, w), "TEMPORAL_API_KEY") != nil {
			t.Errorf("%s %s has TEMPORAL_API_KEY although no API key is configured", w.kind(), w.name())
		}
	}

	// Blobs on the claim the chart creates, shared by the three workers.
	pvc := ms.find(t, "PersistentVolumeClaim", "flexcord-blobs")
	if got := str(dig(pvc, "spec", "storageClassName")) + " " + fmt.Sprint(dig(pvc, "spec", "accessModes")); got != "nfs-client [ReadWriteMany]" {
		t.Errorf("claim class and access modes = %s, want nfs-client [ReadWriteMany]", got)
	}
	if got := str(dig(blobVolume(t, ms.find(t, "Deployment", "flexcord-worker")), "persistentVolumeClaim", "claimName")); got != "flexcord-blobs" {
		t.Errorf("worker mounts claim %q at %s, want flexcord-blobs", got, blobsPath)
	}
	checkBlobsWorkerOnly(t, ms)
	checkNoSecretValues(t, ms)
}

func TestChartToggles(t *testing.T) {
	ms := render(t,
		"--set", "temporal.address="+selfHostedAddress,
		"--set", "ingress.autoscaling.enabled=true",
		"--set", "worker.replicas=1",
		"--set", "gateway.enabled=false",
		"--set", "ingress.kubernetesIngress.enabled=true",
		"--set", "publicURL=https://help.example.org",
	)
	ms.find(t, "HorizontalPodAutoscaler", "flexcord-ingress")
	if ms.has("PodDisruptionBudget", "flexcord-worker") {
		t.Error("a single worker got a PodDisruptionBudget, which would block node drains")
	}
	for _, kind := range []string{"StatefulSet", "PodDisruptionBudget"} {
		if ms.has(kind, "flexcord-gateway") {
			t.Errorf("gateway disabled but %s rendered", kind)
		}
	}
	if got := str(dig(ms.find(t, "ConfigMap", "flexcord"), "data", "FLEXCORD_PUBLIC_URL")); got != "https://help.example.org" {
		t.Errorf("publicURL should win over the Ingress host; FLEXCORD_PUBLIC_URL = %q", got)
	}
	if got := str(dig(ms.find(t, "Ingress", "flexcord"), "spec", "ingressClassName")); got != "" {
		t.Errorf("empty className rendered as %q", got)
	}
}

func TestChartWorkerVersioning(t *testing.T) {
	ms := render(t, "--set", "temporal.address="+selfHostedAddress,
		"--set", "worker.versioning.deploymentName=flexcord", "--set", "worker.versioning.buildId=v1.6.0")
	c := container(t, ms.find(t, "Deployment", "flexcord-worker"))
	for name, want := range map[string]string{"FLEXCORD_DEPLOYMENT_NAME": "flexcord", "FLEXCORD_BUILD_ID": "v1.6.0"} {
		if got := str(dig(envVar(c, name), "value")); got != want {
			t.Errorf("worker %s = %q, want %q", name, got, want)
		}
	}
	// Off by default: an unversioned worker.
	c = container(t, render(t, "--set", "temporal.address="+selfHostedAddress).find(t, "Deployment", "flexcord-worker"))
	if envVar(c, "FLEXCORD_DEPLOYMENT_NAME") != nil || envVar(c, "FLEXCORD_BUILD_ID") != nil {
		t.Error("versioning variables rendered without worker.versioning")
	}
}

// noBlobWarning is the start of NOTES.txt's warning that blobs live in an emptyDir per pod.
const noBlobWarning = "WARNING: transcripts and attachments are not persisted"

func TestChartBlobsDefault(t *testing.T) {
	ms := render(t, "--set", "temporal.address="+selfHostedAddress)
	worker := ms.find(t, "Deployment", "flexcord-worker")
	v := blobVolume(t, worker)
	if v == nil {
		t.Fatalf("the worker mounts nothing at %s, where the read-only root filesystem refuses its transcripts", blobsPath)
	}
	if _, ok := v["emptyDir"].(map[string]any); !ok {
		t.Errorf("worker blob volume = %v, want an emptyDir without persistence or S3", v)
	}
	if names := blobEnv(container(t, worker)); len(names) > 0 {
		t.Errorf("worker has blob store variables %v without blobs.s3; it should use the image's default directory", names)
	}
	if got := ms.ofKind("PersistentVolumeClaim"); len(got) > 0 {
		t.Errorf("default values rendered PersistentVolumeClaim %s", got[0].name())
	}
	checkBlobsWorkerOnly(t, ms)

	notes := renderNotes(t, "--set", "temporal.address="+selfHostedAddress)
	for _, want := range []string{noBlobWarning, "emptyDir", blobsPath, "only as long as that pod", "not shared between worker replicas", "blobs.s3.bucket", "blobs.persistence.enabled=true"} {
		if !strings.Contains(notes, want) {
			t.Errorf("NOTES.txt without blobs.s3 or blobs.persistence should say %q; it says:\n%s", want, notes)
		}
	}
}

func TestChartBlobsPersistence(t *testing.T) {
	addr := "temporal.address=" + selfHostedAddress

	t.Run("chart-created claim", func(t *testing.T) {
		t.Parallel()
		args := []string{"--set", addr, "--set", "blobs.persistence.enabled=true",
			"--set", "blobs.persistence.size=50Gi", "--set", "blobs.persistence.storageClass=nfs-client",
			"--set", "blobs.persistence.annotations.helm\\.sh/resource-policy=keep"}
		ms := render(t, args...)
		pvc := ms.find(t, "PersistentVolumeClaim", "flexcord-blobs")
		if got := fmt.Sprint(dig(pvc, "spec", "accessModes")); got != "[ReadWriteMany]" {
			t.Errorf("claim accessModes = %s, want [ReadWriteMany] by default: several workers mount it", got)
		}
		if got := str(dig(pvc, "spec", "resources", "requests", "storage")); got != "50Gi" {
			t.Errorf("claim size = %q, want 50Gi", got)
		}
		if got := str(dig(pvc, "spec", "storageClassName")); got != "nfs-client" {
			t.Errorf("claim storageClassName = %q, want nfs-client", got)
		}
		if got := str(dig(pvc, "metadata", "annotations", "helm.sh/resource-policy")); got != "keep" {
			t.Errorf("claim annotations not applied: %v", dig(pvc, "metadata", "annotations"))
		}
		if got := str(dig(blobVolume(t, ms.find(t, "Deployment", "flexcord-worker")), "persistentVolumeClaim", "claimName")); got != "flexcord-blobs" {
			t.Errorf("worker mounts claim %q at %s, want flexcord-blobs", got, blobsPath)
		}
		checkBlobsWorkerOnly(t, ms)

		notes := renderNotes(t, args...)
		if strings.Contains(notes, noBlobWarning) {
			t.Errorf("NOTES.txt warns of an emptyDir although the workers share a claim:\n%s", notes)
		}
		if !strings.Contains(notes, "volume claim flexcord-blobs") {
			t.Errorf("NOTES.txt does not name the claim:\n%s", notes)
		}
	})

	t.Run("existing claim", func(t *testing.T) {
		t.Parallel()
		ms := render(t, "--set", addr, "--set", "blobs.persistence.enabled=true", "--set", "blobs.persistence.existingClaim=flexcord-transcripts")
		if got := ms.ofKind("PersistentVolumeClaim"); len(got) > 0 {
			t.Errorf("existingClaim set, but the chart rendered PersistentVolumeClaim %s", got[0].name())
		}
		if got := str(dig(blobVolume(t, ms.find(t, "Deployment", "flexcord-worker")), "persistentVolumeClaim", "claimName")); got != "flexcord-transcripts" {
			t.Errorf("worker mounts claim %q at %s, want the existing flexcord-transcripts", got, blobsPath)
		}
		checkBlobsWorkerOnly(t, ms)

		// existingClaim alone turns persistence on, rather than leaving the workers on an emptyDir.
		ms = render(t, "--set", addr, "--set", "blobs.persistence.existingClaim=flexcord-transcripts")
		if got := str(dig(blobVolume(t, ms.find(t, "Deployment", "flexcord-worker")), "persistentVolumeClaim", "claimName")); got != "flexcord-transcripts" {
			t.Errorf("with only existingClaim, worker mounts claim %q, want flexcord-transcripts", got)
		}
	})

	t.Run("no dynamic provisioning", func(t *testing.T) {
		t.Parallel()
		ms := render(t, "--set", addr, "--set", "blobs.persistence.enabled=true", "--set", "blobs.persistence.storageClass=-")
		pvc := ms.find(t, "PersistentVolumeClaim", "flexcord-blobs")
		if class, ok := dig(pvc, "spec").(map[string]any)["storageClassName"]; !ok || class != "" {
			t.Errorf(`storageClass "-" gave storageClassName %v (set: %v), want ""`, class, ok)
		}
		ms = render(t, "--set", addr, "--set", "blobs.persistence.enabled=true")
		if _, ok := dig(ms.find(t, "PersistentVolumeClaim", "flexcord-blobs"), "spec").(map[string]any)["storageClassName"]; ok {
			t.Error("empty storageClass rendered a storageClassName; it should leave the cluster's default")
		}
	})

	t.Run("ReadWriteOnce with several workers", func(t *testing.T) {
		t.Parallel()
		notes := renderNotes(t, "--set", addr, "--set", "blobs.persistence.enabled=true", "--set", "blobs.persistence.accessModes={ReadWriteOnce}")
		if !strings.Contains(notes, "has no ReadWriteMany") {
			t.Errorf("NOTES.txt does not warn that two workers cannot share a ReadWriteOnce claim:\n%s", notes)
		}
	})
}

func TestChartBlobsS3(t *testing.T) {
	args := []string{"--set", "temporal.address=" + selfHostedAddress,
		"--set", "blobs.s3.bucket=flexcord-transcripts",
		"--set", "blobs.s3.endpoint=http://minio.storage:9000",
		"--set", "blobs.s3.region=eu-west-1",
		"--set", "blobs.s3.prefix=support/",
		"--set", "blobs.s3.insecure=true",
		"--set", "blobs.s3.existingSecret=flexcord-s3",
		"--set", "blobs.s3.accessKeyKey=access",
		"--set", "blobs.s3.secretKeyKey=secret",
	}
	ms := render(t, args...)
	worker := ms.find(t, "Deployment", "flexcord-worker")
	c := container(t, worker)
	for name, want := range map[string]string{
		"FLEXCORD_S3_BUCKET":   "flexcord-transcripts",
		"FLEXCORD_S3_ENDPOINT": "http://minio.storage:9000",
		"FLEXCORD_S3_REGION":   "eu-west-1",
		"FLEXCORD_S3_PREFIX":   "support/",
		"FLEXCORD_S3_INSECURE": "true",
	} {
		if got := str(dig(envVar(c, name), "value")); got != want {
			t.Errorf("worker %s = %q, want %q", name, got, want)
		}
	}
	for name, key := range map[string]string{"FLEXCORD_S3_ACCESS_KEY": "access", "FLEXCORD_S3_SECRET_KEY": "secret"} {
		e := envVar(c, name)
		if e == nil {
			t.Errorf("worker has no %s", name)
			continue
		}
		if _, literal := e["value"]; literal {
			t.Errorf("worker %s has a literal value", name)
		}
		if got := str(dig(e, "valueFrom", "secretKeyRef", "name")) + "/" + str(dig(e, "valueFrom", "secretKeyRef", "key")); got != "flexcord-s3/"+key {
			t.Errorf("worker %s from %q, want secret flexcord-s3 key %s", name, got, key)
		}
	}
	if envVar(c, "FLEXCORD_BLOB_DIR") != nil {
		t.Error("worker sets FLEXCORD_BLOB_DIR as well as FLEXCORD_S3_BUCKET, which the store refuses")
	}
	if v := blobVolume(t, worker); v != nil {
		t.Errorf("worker mounts %v at %s although blobs go to S3", v, blobsPath)
	}
	if got := ms.ofKind("PersistentVolumeClaim"); len(got) > 0 {
		t.Errorf("blobs in S3, but the chart rendered PersistentVolumeClaim %s", got[0].name())
	}
	checkBlobsWorkerOnly(t, ms)
	checkNoSecretValues(t, ms)

	notes := renderNotes(t, args...)
	if strings.Contains(notes, noBlobWarning) {
		t.Errorf("NOTES.txt warns of an emptyDir although blobs go to S3:\n%s", notes)
	}
	if !strings.Contains(notes, "S3 bucket flexcord-transcripts") {
		t.Errorf("NOTES.txt does not name the bucket:\n%s", notes)
	}

	// Only what is set is passed on: the store's own defaults apply to the rest.
	c = container(t, render(t, "--set", "temporal.address="+selfHostedAddress,
		"--set", "blobs.s3.bucket=b", "--set", "blobs.s3.existingSecret=s").find(t, "Deployment", "flexcord-worker"))
	if got := blobEnv(c); !slices.Equal(got, []string{"FLEXCORD_S3_BUCKET", "FLEXCORD_S3_ACCESS_KEY", "FLEXCORD_S3_SECRET_KEY"}) {
		t.Errorf("worker blob store variables = %v, want the bucket and the two keys only", got)
	}
	if got := str(dig(envVar(c, "FLEXCORD_S3_SECRET_KEY"), "valueFrom", "secretKeyRef", "key")); got != "FLEXCORD_S3_SECRET_KEY" {
		t.Errorf("default secret key name = %q, want FLEXCORD_S3_SECRET_KEY", got)
	}
}

func TestChartRefusesMistakes(t *testing.T) {
	addr := "temporal.address=" + selfHostedAddress
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"secret in config", []string{"--set", addr, "--set", "config.DISCORD_TOKEN=abc"},
			"config.DISCORD_TOKEN is a secret"},
		{"feed secret in config", []string{"--set", addr, "--set", "config.FLEXCORD_FEED_SECRET_BLOG=abc"},
			"config.FLEXCORD_FEED_SECRET_BLOG is a secret"},
		{"secret value in extraEnv", []string{"--set", addr, "--set", "extraEnv[0].name=TWILIO_AUTH_TOKEN", "--set", "extraEnv[0].value=abc"},
			"TWILIO_AUTH_TOKEN is a secret"},
		{"derived setting in config", []string{"--set", addr, "--set", "config.TEMPORAL_ADDRESS=elsewhere:7233"},
			"use temporal.address"},
		{"two CA sources", []string{"--set", addr, "--set", "temporal.tls.serverCA.existingSecret=a", "--set", "temporal.tls.serverCA.existingConfigMap=b"},
			"not both"},
		{"autoscaling without a CPU request", []string{"--set", addr, "--set", "worker.autoscaling.enabled=true", "--set", "worker.resources=null"},
			"needs worker.resources.requests.cpu"},
		{"no shards", []string{"--set", addr, "--set", "gateway.shardCount=0"},
			"shardCount"},
		{"versioning half set", []string{"--set", addr, "--set", "worker.versioning.buildId=v2"},
			"set deploymentName and buildId, or neither"},
		{"S3 secret key in config", []string{"--set", addr, "--set", "config.FLEXCORD_S3_SECRET_KEY=abc"},
			"config.FLEXCORD_S3_SECRET_KEY is a secret and must not be in values: put it in the Secret named by blobs.s3.existingSecret"},
		{"S3 access key value in worker.extraEnv", []string{"--set", addr, "--set", "worker.extraEnv[0].name=FLEXCORD_S3_ACCESS_KEY", "--set", "worker.extraEnv[0].value=abc"},
			"FLEXCORD_S3_ACCESS_KEY is a secret"},
		{"bucket in config", []string{"--set", addr, "--set", "config.FLEXCORD_S3_BUCKET=b"},
			"use blobs.s3.bucket"},
		{"blob directory in config", []string{"--set", addr, "--set", "config.FLEXCORD_BLOB_DIR=/data"},
			"use blobs.persistence"},
		{"bucket without credentials", []string{"--set", addr, "--set", "blobs.s3.bucket=b"},
			"blobs.s3.bucket needs blobs.s3.existingSecret"},
		{"S3 settings without a bucket", []string{"--set", addr, "--set", "blobs.s3.endpoint=http://minio:9000"},
			"blobs.s3.endpoint is set but blobs.s3.bucket is not"},
		{"S3 and a volume", []string{"--set", addr, "--set", "blobs.s3.bucket=b", "--set", "blobs.s3.existingSecret=s", "--set", "blobs.persistence.enabled=true"},
			"set s3.bucket or persistence"},
		// values.schema.json
		{"insecure not a boolean", []string{"--set", addr, "--set-string", "blobs.s3.insecure=true"},
			"/blobs/s3/insecure"},
		{"size not a string", []string{"--set", addr, "--set", "blobs.persistence.size=10"},
			"/blobs/persistence/size"},
		{"persistence not an object", []string{"--set", addr, "--set", "blobs.persistence=true"},
			"/blobs/persistence"},
		{"read-only access mode", []string{"--set", addr, "--set", "blobs.persistence.accessModes={ReadOnlyMany}"},
			"/blobs/persistence/accessModes/0"},
		{"unknown blobs key", []string{"--set", addr, "--set", "blobs.dir=/data"},
			"additional properties 'dir' not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			msg := renderFails(t, c.args...)
			if !strings.Contains(msg, c.want) {
				t.Errorf("helm template should say %q; it said:\n%s", c.want, msg)
			}
			if strings.Contains(msg, "abc") && !strings.Contains(c.want, "abc") {
				t.Errorf("the error repeats the secret value:\n%s", msg)
			}
		})
	}
}

// ---------------------------------------------------------------------------------------------
// compose.yaml

// flexcordServices run the image built from deploy/Dockerfile, with their subcommand.
var flexcordServices = map[string]string{
	"sandbox":  "sandbox",
	"worker-1": "worker",
	"worker-2": "worker",
	"ingress":  "ingress",
	"gateway":  "gateway",
}

func loadCompose(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("compose.yaml does not parse: %v", err)
	}
	return doc
}

func TestComposeServices(t *testing.T) {
	doc := loadCompose(t)
	services, _ := doc["services"].(map[string]any)
	for _, name := range []string{"postgresql", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui", "sandbox", "worker-1", "worker-2", "ingress", "gateway"} {
		if _, ok := services[name]; !ok {
			t.Errorf("compose.yaml has no service %q", name)
		}
	}

	for name, role := range flexcordServices {
		s := services[name]
		if s == nil {
			continue
		}
		if got, want := str(dig(s, "build", "context")), ".."; got != want {
			t.Errorf("%s: build context %q, want %q", name, got, want)
		}
		dockerfile := filepath.Join(str(dig(s, "build", "context")), str(dig(s, "build", "dockerfile")))
		if filepath.ToSlash(dockerfile) != "../deploy/Dockerfile" {
			t.Errorf("%s: builds %s, want deploy/Dockerfile", name, dockerfile)
		} else if _, err := os.Stat(dockerfile); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if got := list(dig(s, "command")); len(got) == 0 || got[0] != role {
			t.Errorf("%s: command %v, want %s", name, got, role)
		}
		var readsDotEnv bool
		for _, f := range list(dig(s, "env_file")) {
			if str(dig(f, "path")) == "../.env" {
				readsDotEnv = true
				if dig(f, "required") != false {
					t.Errorf("%s: ../.env must be required: false so that a trial needs none", name)
				}
			}
		}
		if !readsDotEnv {
			t.Errorf("%s does not read ../.env (env_file %v)", name, dig(s, "env_file"))
		}
		if role != "sandbox" {
			if got := str(dig(s, "environment", "TEMPORAL_ADDRESS")); got != "temporal:7233" {
				t.Errorf("%s: TEMPORAL_ADDRESS = %q, want temporal:7233", name, got)
			}
			if got := str(dig(s, "depends_on", "temporal-namespace", "condition")); got != "service_completed_successfully" {
				t.Errorf("%s: starts before the namespace exists (condition %q)", name, got)
			}
		}
	}
	if len(list(dig(services, "worker-1", "command"))) == 0 || str(dig(services, "worker-1", "image")) != str(dig(services, "worker-2", "image")) {
		t.Error("worker-1 and worker-2 should run the same image")
	}
	// Both workers share one blob store: the same named volume at the image's default directory.
	var blobVolumes []string
	for _, name := range []string{"worker-1", "worker-2"} {
		var found string
		for _, v := range list(dig(services, name, "volumes")) {
			if source, target := composeMount(v); target == blobsPath {
				found = source
			}
		}
		if found == "" || strings.HasPrefix(found, ".") || strings.HasPrefix(found, "/") {
			t.Errorf("%s does not mount a named volume at %s (volumes %v)", name, blobsPath, dig(services, name, "volumes"))
		}
		blobVolumes = append(blobVolumes, found)
	}
	if blobVolumes[0] != blobVolumes[1] {
		t.Errorf("worker-1 and worker-2 mount different blob volumes %v; they must share one", blobVolumes)
	}

	// Temporal: the plain server image, after the schema job succeeded, on PostgreSQL.
	temporal := services["temporal"]
	if got := str(dig(temporal, "depends_on", "temporal-schema", "condition")); got != "service_completed_successfully" {
		t.Errorf("temporal depends on temporal-schema with condition %q, want service_completed_successfully", got)
	}
	image := str(dig(temporal, "image"))
	if !strings.HasPrefix(image, "temporalio/server:") {
		t.Errorf("temporal image %q, want temporalio/server (auto-setup is deprecated)", image)
	}
	if v := serverVersion(t); !strings.Contains(image, strings.TrimPrefix(v, "v")) {
		t.Errorf("temporal image %q does not match go.temporal.io/server %s in go.mod", image, v)
	}
	if got := str(dig(temporal, "environment", "DB")); got != "postgres12" {
		t.Errorf("temporal DB = %q, want postgres12", got)
	}

	schema := services["temporal-schema"]
	if got := str(dig(schema, "image")); !strings.HasPrefix(got, "temporalio/admin-tools:") {
		t.Errorf("schema job image %q, want temporalio/admin-tools", got)
	}
	if got := str(dig(schema, "environment", "SQL_PLUGIN")); got != "postgres12" {
		t.Errorf("schema job SQL_PLUGIN = %q, want postgres12", got)
	}
	script := fmt.Sprint(dig(schema, "command"))
	for _, want := range []string{
		"--db temporal create-database", "--db temporal_visibility create-database",
		"--db temporal setup-schema", "--db temporal_visibility setup-schema",
		"/etc/temporal/schema/postgresql/v12/temporal/versioned",
		"/etc/temporal/schema/postgresql/v12/visibility/versioned",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("schema job does not run %q", want)
		}
	}
	if got := str(dig(schema, "depends_on", "postgresql", "condition")); got != "service_healthy" {
		t.Errorf("schema job waits for postgresql with %q, want service_healthy", got)
	}

	if !publishes(dig(services, "ingress", "ports"), "8080") {
		t.Errorf("ingress does not publish port 8080: %v", dig(services, "ingress", "ports"))
	}
	gw := services["gateway"]
	if got := str(dig(gw, "environment", "DISCORD_SHARD_ID")) + "/" + str(dig(gw, "environment", "DISCORD_SHARD_COUNT")); got != "0/1" {
		t.Errorf("gateway shard %s, want 0/1", got)
	}
}

// TestComposeReferences checks that what compose.yaml points at exists: services named in
// depends_on (and healthchecks where a condition needs one), env files and mounted files.
func TestComposeReferences(t *testing.T) {
	doc := loadCompose(t)
	services, _ := doc["services"].(map[string]any)
	for name, s := range services {
		deps, _ := dig(s, "depends_on").(map[string]any)
		for dep, cond := range deps {
			target, ok := services[dep]
			if !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
				continue
			}
			switch c := str(dig(cond, "condition")); c {
			case "service_healthy":
				if dig(target, "healthcheck") == nil {
					t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				}
			case "service_completed_successfully":
				if r := str(dig(target, "restart")); r != "no" && r != "" {
					t.Errorf("%s waits for one-shot %s, which restarts (%s)", name, dep, r)
				}
			case "service_started":
			default:
				t.Errorf("%s depends on %s with unknown condition %q", name, dep, c)
			}
		}
		for _, f := range list(dig(s, "env_file")) {
			path := str(dig(f, "path"))
			if _, err := os.Stat(path); err != nil && dig(f, "required") != false {
				t.Errorf("%s: required env file %s: %v", name, path, err)
			}
		}
		for _, v := range list(dig(s, "volumes")) {
			source, _ := composeMount(v)
			switch {
			case source == "":
			case strings.HasPrefix(source, "."):
				if _, err := os.Stat(source); err != nil {
					t.Errorf("%s mounts %s: %v", name, source, err)
				}
			case !strings.HasPrefix(source, "/"):
				if _, declared := dig(doc, "volumes").(map[string]any)[source]; !declared {
					t.Errorf("%s mounts named volume %s, which the top-level volumes do not declare", name, source)
				}
			}
		}
	}

	env := readEnvFile(t, "compose.env")
	if got := env["FLEXCORD_SANDBOX_URL"]; got != "http://sandbox:8090" {
		t.Errorf("compose.env FLEXCORD_SANDBOX_URL = %q, want http://sandbox:8090 for the no-account trial", got)
	}
	for name := range env {
		if isSecretName(name) {
			t.Errorf("compose.env sets secret %s; secrets belong in .env", name)
		}
	}

	var dyn map[string]any
	data, err := os.ReadFile("temporal/dynamicconfig.yaml")
	if err == nil {
		err = yaml.Unmarshal(data, &dyn)
	}
	if err != nil {
		t.Fatalf("temporal/dynamicconfig.yaml: %v", err)
	}
	if got := str(dig(dyn, "history.transferProcessorMaxPollRPS", 0, "value")); got != "1000" {
		t.Errorf("dynamic config does not carry the tuned poll rate: %q", got)
	}
}

// composeMount returns the source and target of a service's volume, in the short syntax
// (source:target[:mode]) or the long one (a map with source and target).
func composeMount(v any) (source, target string) {
	if m, ok := v.(map[string]any); ok {
		return str(m["source"]), str(m["target"])
	}
	parts := strings.Split(str(v), ":")
	if len(parts) == 1 {
		return "", parts[0] // an anonymous volume
	}
	return parts[0], parts[1]
}

func publishes(ports any, containerPort string) bool {
	for _, p := range list(ports) {
		s := str(p)
		if i := strings.LastIndex(s, ":"); i >= 0 && strings.TrimSuffix(s[i+1:], "/tcp") == containerPort {
			return true
		}
	}
	return false
}

func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: line without '=': %q", path, line)
			continue
		}
		env[name] = value
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}

// serverVersion is the Temporal server version pinned in go.mod, which compose's server image
// should match.
func serverVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*go\.temporal\.io/server\s+(v\S+)`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.temporal.io/server not found in go.mod")
	}
	return string(m[1])
}
