package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return data
}

func TestParseDesignExample(t *testing.T) {
	t.Parallel()
	inv, err := Parse(readTestdata(t, "ha.yaml"))
	require.NoError(t, err)
	require.Equal(t, "example-site", inv.Site)
	require.Len(t, inv.Nodes, 4)
	require.True(t, inv.Sync())
	require.True(t, inv.Push())
	require.True(t, inv.UsesMinIO())
	require.False(t, inv.AllInOne())
	require.Equal(t, []string{"app1", "app2", "app3"}, names(inv.With(RoleDB)))
	require.Equal(t, []string{"app1", "app2", "app3"}, names(inv.EtcdMembers()))
	require.Equal(t, []string{"edge1"}, names(inv.With(RoleProxy)))
	require.Equal(t, 22, inv.Nodes[3].SSH.Port)
	require.Equal(t, 100, inv.Options.MaxFileSizeMB)
	require.Equal(t, TLSSiteCA, inv.TLS.Mode)
}

func TestParseAllInOneDefaults(t *testing.T) {
	t.Parallel()
	inv, err := Parse(readTestdata(t, "allinone.yaml"))
	require.NoError(t, err)
	require.True(t, inv.AllInOne())
	require.False(t, inv.UsesMinIO(), "a single node without drives keeps files locally")
	require.False(t, inv.Sync(), "one db node cannot replicate synchronously")
	n := inv.Nodes[0]
	require.Equal(t, "root", n.SSH.User)
	require.Equal(t, "id_ed25519", n.SSH.Key)
	require.Equal(t, 22, n.SSH.Port)
	require.Equal(t, TLSSiteCA, inv.TLS.Mode)

	inv.Dir = "/etc/garrison-site"
	require.Equal(t, "/etc/garrison-site/id_ed25519", inv.Path(n.SSH.Key))
	require.Equal(t, "/abs/key", inv.Path("/abs/key"))
	home, err := os.UserHomeDir()
	require.NoError(t, err)
	require.Equal(t, filepath.Join(home, ".ssh/k"), inv.Path("~/.ssh/k"))
}

func names(ns []Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}

const good = `
site: s
site_url: https://chat.example
admin: {username: admin, email: a@example.org}
ssh: {key: k}
nodes:
  - {name: a, address: 10.0.0.1, roles: [app, db, storage, proxy]}
`

// edit applies textual replacements to the good inventory.
func edit(pairs ...string) string {
	return strings.NewReplacer(pairs...).Replace(good)
}

func TestValidateNamesEachProblem(t *testing.T) {
	t.Parallel()
	three := `
  - {name: a, address: 10.0.0.1, roles: [app, db, storage], drives: [/d1, /d2]}
  - {name: b, address: 10.0.0.2, roles: [app, db, storage], drives: [/d1, /d2]}
  - {name: c, address: 10.0.0.3, roles: [app, db, storage, proxy], drives: [/d1, /d2]}
`
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"no site", edit("site: s", ""), []string{"site: missing"}},
		{"bad site", edit("site: s", "site: Bad_Site"), []string{`site: "Bad_Site" must be`}},
		{"http url", edit("https://chat", "http://chat"), []string{"site_url: \"http://chat.example\" must start with https://"}},
		{"url with path", edit("https://chat.example", "https://chat.example/chat"), []string{"must be just scheme, host"}},
		{"tls mode", edit("ssh: {key: k}", "ssh: {key: k}\ntls: {mode: none}"), []string{`tls.mode: "none" is neither`}},
		{"provided without files", edit("ssh: {key: k}", "ssh: {key: k}\ntls: {mode: provided}"), []string{"tls.ca_cert: missing", "tls.ca_key: missing"}},
		{"half public", edit("ssh: {key: k}", "ssh: {key: k}\ntls: {public_cert: c.pem}"), []string{"public_cert and public_key go together"}},
		{"admin", edit("username: admin, email: a@example.org", "username: A, email: nope"), []string{"admin.username: \"A\"", "admin.email: \"nope\""}},
		{"monitoring", edit("ssh: {key: k}", "ssh: {key: k}\noptions: {monitoring_networks: [10.0.0.1]}"), []string{"options.monitoring_networks[0]"}},
		{"no nodes", edit("  - {name: a, address: 10.0.0.1, roles: [app, db, storage, proxy]}", ""), []string{"nodes: none"}},
		{"node fields", edit("{name: a, address: 10.0.0.1, roles: [app, db, storage, proxy]}",
			"{name: A, address: 'not an address', ssh: {port: 70000, host_key: md5}, roles: [app, db, web, db, proxy]}"),
			[]string{"nodes[0] (A).name", "nodes[0] (A).address", "nodes[0] (A).ssh.port: 70000", "nodes[0] (A).ssh.host_key", `unknown role "web"`, `"db" listed twice`}},
		{"loopback", edit("10.0.0.1", "127.0.0.1"), []string{"127.0.0.1 is not an address other nodes can reach"}},
		{"missing roles", edit("[app, db, storage, proxy]", "[storage]"), []string{"no node has the app role", "no node has the db role", "no node has the proxy role"}},
		{"duplicates", edit("  - {name: a, address: 10.0.0.1, roles: [app, db, storage, proxy]}", three+"  - {name: a, address: 10.0.0.2, roles: [proxy]}"),
			[]string{`nodes[3] (a).name: "a" is also nodes[0]'s name`, "nodes[3] (a).address: 10.0.0.2 is also nodes[1]'s address"}},
		{"two db nodes", edit("  - {name: a, address: 10.0.0.1, roles: [app, db, storage, proxy]}",
			"  - {name: a, address: 10.0.0.1, roles: [app, db, storage, proxy], drives: [/d1, /d2]}\n  - {name: b, address: 10.0.0.2, roles: [db, storage], drives: [/d1, /d2]}"),
			[]string{"2 db nodes cannot keep an etcd quorum"}},
		{"sync on one db", edit("ssh: {key: k}", "ssh: {key: k}\noptions: {synchronous_replication: true}"), []string{"options.synchronous_replication: needs at least 2 db nodes"}},
		{"storage without drives", strings.Replace(edit("  - {name: a, address: 10.0.0.1, roles: [app, db, storage, proxy]}", three), "drives: [/d1, /d2]}\n  - {name: c", "}\n  - {name: c", 1),
			[]string{"nodes[1] (b).drives: a storage node needs at least one drive", "same number of drives"}},
		{"drives without storage", edit("roles: [app, db, storage, proxy]}", "roles: [app, db, proxy], drives: [/srv/d]}"), []string{"only storage nodes have MinIO drives"}},
		{"bad drives", edit("roles: [app, db, storage, proxy]}", "roles: [app, db, storage, proxy], drives: [rel, /, '/a b', /x, /x/]}"),
			[]string{`drives[0]: "rel" is not an absolute path`, `drives[1]: "/" cannot hold data`, `drives[2]: "/a b" has a space`, `drives[4]: "/x/" is listed twice`}},
		{"shared files need storage", edit("  - {name: a, address: 10.0.0.1, roles: [app, db, storage, proxy]}",
			"  - {name: a, address: 10.0.0.1, roles: [app, db, proxy]}\n  - {name: b, address: 10.0.0.2, roles: [app]}"), []string{"2 app nodes share files"}},
		{"too few drives", edit("  - {name: a, address: 10.0.0.1, roles: [app, db, storage, proxy]}",
			"  - {name: a, address: 10.0.0.1, roles: [app, db, storage, proxy], drives: [/d]}\n  - {name: b, address: 10.0.0.2, roles: [app, storage], drives: [/d]}"),
			[]string{"at least 4 drives over its storage nodes (there are 2)"}},
		{"two backup nodes", edit("  - {name: a, address: 10.0.0.1, roles: [app, db, storage, proxy]}", three+"  - {name: d, address: 10.0.0.4, roles: [backup]}\n  - {name: e, address: 10.0.0.5, roles: [backup]}"),
			[]string{"2 nodes have the backup role"}},
		{"db nodes without a shared backup repository", edit("  - {name: a, address: 10.0.0.1, roles: [app, db, storage, proxy]}",
			"  - {name: a, address: 10.0.0.1, roles: [app, db, proxy]}\n  - {name: b, address: 10.0.0.2, roles: [db]}\n  - {name: c, address: 10.0.0.3, roles: [db]}"),
			[]string{"3 db nodes archive to one pgBackRest repository"}},
		{"unknown field", edit("site: s", "site: s\nsite_name: x"), []string{"field site_name not found"}},
		{"unknown node field", edit("roles: [app", "role: x, roles: [app"), []string{"field role not found"}},
		{"two documents", good + "---\nsite: t\n", []string{"more than one YAML document"}},
		{"not yaml", "site: [", []string{"inventory: yaml:"}},
		{"empty", "", []string{"inventory is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.yaml))
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestProblemsAllAtOnce(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte(`
site: Bad
site_url: http://x
admin: {username: a, email: b}
nodes:
  - {name: n, address: 10.0.0.1, roles: [web]}
`))
	var p Problems
	require.ErrorAs(t, err, &p)
	require.GreaterOrEqual(t, len(p), 7, "%v", err)
	require.Contains(t, err.Error(), "problems:\n  site:")
}

func TestGoodVariantsPass(t *testing.T) {
	t.Parallel()
	for _, y := range []string{
		good,
		edit("10.0.0.1", "node1.example.mil"),
		edit("10.0.0.1", "fd00::1"),
		edit("ssh: {key: k}", "ssh: {key: k, user: deploy, port: 2222}\noptions: {push: false, monitoring_networks: [10.9.0.0/16], login_rate_limit_exempt: [192.0.2.1, 198.51.100.0/24], max_file_size_mb: 50}"),
		edit("roles: [app, db, storage, proxy]}", "roles: [app, db, storage, proxy], drives: [/srv/minio/d1], ssh: {host_key: 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s'}}"),
	} {
		inv, err := Parse([]byte(y))
		require.NoError(t, err, y)
		require.NotEmpty(t, inv.Nodes)
	}
	inv, err := Parse([]byte(edit("ssh: {key: k}", "ssh: {key: k}\noptions: {push: false}")))
	require.NoError(t, err)
	require.False(t, inv.Push())
}

func TestLoadChecksFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "site.yaml")
	require.NoError(t, os.WriteFile(path, []byte(edit("ssh: {key: k}", "ssh: {key: k}\ntls: {mode: provided, ca_cert: ca.pem, ca_key: ca.key}")), 0o644))

	_, err := Load(path)
	require.ErrorContains(t, err, "tls.ca_cert: stat "+filepath.Join(dir, "ca.pem"))
	require.ErrorContains(t, err, "nodes[0] (a).ssh.key: stat "+filepath.Join(dir, "k"))

	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.key"), []byte("x"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "k"), 0o700))
	_, err = Load(path)
	require.ErrorContains(t, err, "ca.key is readable by others (mode 644); chmod 600 it")
	require.ErrorContains(t, err, "k is not a regular file")

	require.NoError(t, os.Chmod(filepath.Join(dir, "ca.key"), 0o600))
	require.NoError(t, os.Remove(filepath.Join(dir, "k")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "k"), []byte("x"), 0o600))
	inv, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, dir, inv.Dir)
	require.Equal(t, filepath.Join(dir, "ca.key"), inv.Path(inv.TLS.CAKey))

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	require.ErrorContains(t, err, "missing.yaml")
}

// Every field of the schema is documented in docs/install.md's schema
// table, and the table documents no field the installer does not know.
func TestSchemaDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../../docs/install.md")
	require.NoError(t, err)
	var fields []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for f := range typ.Fields() {
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			name := prefix + tag
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				if ft.Kind() == reflect.Slice {
					name += "[]"
				}
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walk(name+".", ft)
				continue
			}
			fields = append(fields, name)
		}
	}
	walk("", reflect.TypeFor[Inventory]())
	require.Greater(t, len(fields), 20)
	for _, f := range fields {
		require.Contains(t, string(doc), "| `"+f+"` |", "docs/install.md does not document %s", f)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	data, err := os.ReadFile("testdata/ha.yaml")
	if err == nil {
		f.Add(data)
	}
	f.Add([]byte("nodes: [{name: a, drives: ['/', '']}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Parse(data)
		if err != nil {
			return
		}
		// What passes is usable: every node has a name, address and role.
		for _, n := range inv.Nodes {
			if n.Name == "" || n.Address == "" || len(n.Roles) == 0 {
				t.Fatalf("accepted a node without name, address or roles: %+v", n)
			}
		}
		if len(inv.With(RoleApp)) == 0 || len(inv.With(RoleDB)) == 0 {
			t.Fatal("accepted a site without app or db nodes")
		}
	})
}
