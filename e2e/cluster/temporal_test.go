package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"
)

// postgresBinDir finds PostgreSQL's server programs: PATH first, then Debian's
// /usr/lib/postgresql/<version>/bin (newest first). scripts/ensure-postgres.sh installs them.
func postgresBinDir(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	t.Fatal("PostgreSQL's initdb was not found: run scripts/ensure-postgres.sh (make test-cluster does)")
	return ""
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// asPostgresUser returns the command line that runs bin with args as a user PostgreSQL accepts:
// PostgreSQL refuses to run as root, so as root it goes through runuser to the postgres account
// that Debian's package creates.
func asPostgresUser(t *testing.T, bin string, args ...string) (string, []string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return bin, args
	}
	if _, err := user.Lookup("postgres"); err != nil {
		t.Fatalf("running as root and there is no postgres account to run PostgreSQL as: %v", err)
	}
	runuser, err := exec.LookPath("runuser")
	if err != nil {
		t.Fatalf("running as root and runuser is missing: %v", err)
	}
	return runuser, append([]string{"-u", "postgres", "--", bin}, args...)
}

// startPostgres creates a database cluster in a new directory (superuser "temporal", trust
// authentication on loopback) and runs its server on a free port.
func startPostgres(t *testing.T, c *cluster) (port int) {
	t.Helper()
	bin := postgresBinDir(t)
	dir, err := os.MkdirTemp("", "flexcord-cluster-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c.after = append(c.after, func() { _ = os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			if err := os.Chown(dir, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	data := filepath.Join(dir, "data")
	name, args := asPostgresUser(t, filepath.Join(bin, "initdb"), "-D", data, "-U", "temporal", "--auth=trust", "-E", "UTF8", "--no-locale")
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port = freePort(t)
	name, args = asPostgresUser(t, filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(port), "-k", dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=300", "-c", "shared_buffers=128MB", "-c", "log_min_duration_statement=250")
	p := c.add(&proc{name: "postgresql", bin: name, args: args})
	p.start()
	deadline := time.Now().Add(time.Minute)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
			break
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("PostgreSQL did not start: %v\n%s", err, p.tail(30))
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	out, _ := exec.Command(filepath.Join(bin, "postgres"), "--version").Output()
	t.Logf("PostgreSQL %s on 127.0.0.1:%d", strings.TrimSpace(string(out)), port)
	return port
}

// temporalServer is a Temporal server built from the pinned go.temporal.io/server, with its
// schema applied by the server's own temporal-sql-tool.
type temporalServer struct {
	address   string
	namespace string
	proc      *proc
}

// setupSchema creates the databases temporal and temporal_visibility and brings their schema to
// the server's version, the way Temporal's compose setup does: create-database, setup-schema -v
// 0.0, update-schema with the versioned directory of the server's module.
func setupSchema(t *testing.T, sqlTool, schemaRoot string, pgPort int) {
	t.Helper()
	base := []string{"--plugin", "postgres12", "--ep", "127.0.0.1", "-p", strconv.Itoa(pgPort), "-u", "temporal"}
	run := func(args ...string) {
		t.Helper()
		var out []byte
		var err error
		for attempt := 0; attempt < 30; attempt++ { // PostgreSQL may still be starting up
			out, err = exec.Command(sqlTool, append(append([]string{}, base...), args...)...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "starting up") {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil {
			t.Fatalf("temporal-sql-tool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, db := range []struct{ name, dir string }{
		{"temporal", "temporal"}, {"temporal_visibility", "visibility"},
	} {
		run("--db", db.name, "create-database")
		run("--db", db.name, "setup-schema", "-v", "0.0")
		run("--db", db.name, "update-schema", "-d", filepath.Join(schemaRoot, "postgresql", "v12", db.dir, "versioned"))
	}
}

// temporalConfig is the server's configuration: persistence and SQL visibility on PostgreSQL,
// all four services in one process on free loopback ports, the dynamic configuration that
// deploy/compose.yaml gives its server.
const temporalConfig = `log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
    default:
      sql:
        pluginName: postgres12
        databaseName: temporal
        connectAddr: "127.0.0.1:{{pg}}"
        connectProtocol: tcp
        user: temporal
        password: ""
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
    visibility:
      sql:
        pluginName: postgres12
        databaseName: temporal_visibility
        connectAddr: "127.0.0.1:{{pg}}"
        connectProtocol: tcp
        user: temporal
        password: ""
        maxConns: 10
        maxIdleConns: 10
        maxConnLifetime: 1h
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
services:
  frontend:
    rpc: {grpcPort: {{frontend}}, membershipPort: {{frontendm}}, bindOnLocalHost: true, httpPort: {{http}}}
  matching:
    rpc: {grpcPort: {{matching}}, membershipPort: {{matchingm}}, bindOnLocalHost: true}
  history:
    rpc: {grpcPort: {{history}}, membershipPort: {{historym}}, bindOnLocalHost: true}
  worker:
    rpc: {grpcPort: {{worker}}, membershipPort: {{workerm}}, bindOnLocalHost: true}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:{{frontend}}"
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: "{{dynamicconfig}}"
  pollInterval: 10s
`

// startTemporal applies the schema, writes the configuration, starts the server and registers
// the namespace "default".
func startTemporal(t *testing.T, c *cluster, root, serverBin, sqlTool string, pgPort int) *temporalServer {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "go.temporal.io/server").Output()
	if err != nil {
		t.Fatalf("go list -m go.temporal.io/server: %v", err)
	}
	setupSchema(t, sqlTool, filepath.Join(strings.TrimSpace(string(out)), "schema"), pgPort)

	ports := map[string]string{"pg": strconv.Itoa(pgPort), "dynamicconfig": filepath.Join(root, "deploy", "temporal", "dynamicconfig.yaml")}
	for _, k := range []string{"frontend", "frontendm", "http", "matching", "matchingm", "history", "historym", "worker", "workerm"} {
		ports[k] = strconv.Itoa(freeLowPort(t))
	}
	cfg := temporalConfig
	for k, v := range ports {
		cfg = strings.ReplaceAll(cfg, "{{"+k+"}}", v)
	}
	cfgPath := filepath.Join(c.dir, "temporal.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := &temporalServer{address: "127.0.0.1:" + ports["frontend"], namespace: "default"}
	ts.proc = c.add(&proc{name: "temporal", bin: serverBin, args: []string{"--config-file", cfgPath, "--allow-no-auth", "start"}})
	ts.proc.start()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var nc client.NamespaceClient
	for {
		nc, err = client.NewNamespaceClient(client.Options{HostPort: ts.address})
		if err == nil {
			_, err = nc.Describe(ctx, "temporal-system")
			if err == nil {
				break
			}
			nc.Close()
		}
		if ts.proc.exited() || ctx.Err() != nil {
			t.Fatalf("Temporal server did not start: %v\n%s", err, ts.proc.tail(40))
		}
		time.Sleep(250 * time.Millisecond) // polling interval
	}
	defer nc.Close()
	err = nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace:                        ts.namespace,
		WorkflowExecutionRetentionPeriod: durationpb.New(72 * time.Hour),
	})
	var exists *serviceerror.NamespaceAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		t.Fatalf("register namespace %s: %v", ts.namespace, err)
	}
	for {
		if _, err = nc.Describe(ctx, ts.namespace); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("namespace %s: %v", ts.namespace, err)
		}
		time.Sleep(250 * time.Millisecond) // polling interval
	}
	t.Logf("Temporal %s: frontend %s, PostgreSQL persistence and SQL visibility", serverVersion(serverBin), ts.address)
	return ts
}

func serverVersion(bin string) string {
	out, _ := exec.Command(bin, "--version").Output()
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return "server"
	}
	return "server " + f[len(f)-1]
}
