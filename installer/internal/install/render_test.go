package install

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/garrison-chat/garrison/installer/internal/agent"
	"github.com/garrison-chat/garrison/installer/internal/inventory"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func testSite(t *testing.T, name string) *Site {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "inventory", "testdata", name))
	require.NoError(t, err)
	inv, err := inventory.Parse(data)
	require.NoError(t, err)
	return NewSite(inv)
}

// fixedSecrets stand in for generated ones so the goldens are stable.
func fixedSecrets() *Secrets {
	return &Secrets{
		PostgresSuperuser: "SUPERUSERpw", Replication: "REPLpw", Rewind: "REWINDpw", Garrison: "GARRISONpw",
		Push: "PUSHpw", PatroniREST: "PATRONIpw", MinIOUser: "garrison-MINIOuser", MinIOPassword: "MINIOpw",
		GossipKey: "R0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0c=", PushSender: "SENDERpw", AdminPassword: "ADMINpw",
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	require.Equal(t, string(want), string(got), "%s differs; run go test -update if the change is meant", path)
}

func TestRenderGoldens(t *testing.T) {
	t.Parallel()
	sec := fixedSecrets()
	for _, site := range []string{"ha.yaml", "allinone.yaml"} {
		s := testSite(t, site)
		prefix := strings.TrimSuffix(site, ".yaml")
		n := s.Inv.Nodes[0]
		must := func(b []byte, err error) []byte { require.NoError(t, err); return b }
		golden(t, prefix+"-etcd.env", s.EtcdEnv(n))
		golden(t, prefix+"-patroni.yml", must(s.Patroni(n, sec)))
		golden(t, prefix+"-pgbackrest.conf", s.PGBackRest(n, sec))
		golden(t, prefix+"-config.json", must(s.GarrisonConfig(n, sec)))
		golden(t, prefix+"-pushproxy.json", must(s.PushProxyConfig(n, sec)))
		agentJSON := must(s.AgentConfig(n))
		golden(t, prefix+"-agent.json", agentJSON)
		// The agent itself accepts what the installer writes.
		for _, node := range s.Inv.Nodes {
			_, err := agent.ParseConfig(must(s.AgentConfig(node)))
			require.NoError(t, err, "agent.json of %s", node.Name)
		}
		golden(t, prefix+"-nginx.conf", must(s.NginxConfig()))
		if s.Inv.UsesMinIO() {
			golden(t, prefix+"-minio.env", s.MinIOEnv(sec))
		}
	}
}

func TestPatroniUsesTheV2Store(t *testing.T) {
	t.Parallel()
	s := testSite(t, "ha.yaml")
	out, err := s.Patroni(s.Inv.Nodes[1], fixedSecrets())
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(out, &cfg))
	require.Contains(t, cfg, "etcd")
	require.NotContains(t, cfg, "etcd3", "Debian's Patroni 3.0.2 split-brains with etcd3")
	dcs := cfg["bootstrap"].(map[string]any)["dcs"].(map[string]any)
	ttl, loop, retry := dcs["ttl"].(int), dcs["loop_wait"].(int), dcs["retry_timeout"].(int)
	require.LessOrEqual(t, loop+2*retry, ttl, "Patroni requires loop_wait + 2*retry_timeout <= ttl")
	require.Equal(t, true, dcs["synchronous_mode"])
	require.Equal(t, "app2", cfg["name"])
	require.Contains(t, string(s.EtcdEnv(s.Inv.Nodes[1])), `ETCD_ENABLE_V2="true"`)

	for _, tm := range []Timings{DefaultTimings(), RelaxedTimings()} {
		require.LessOrEqual(t, tm.LoopWait+2*tm.RetryTimeout, tm.TTL)
	}
}

func TestSiteLayout(t *testing.T) {
	t.Parallel()
	ha := testSite(t, "ha.yaml")
	app1, edge := ha.Inv.Nodes[0], ha.Inv.Nodes[3]
	require.Equal(t, []string{"etcd-server", "garrison", "garrison-minio", "garrison-pushproxy", "garrisonctl", "patroni", "pgbackrest", "postgresql-15"}, ha.Packages(app1))
	require.Equal(t, []string{"garrisonctl", "nginx"}, ha.Packages(edge))
	require.Equal(t, []string{"etcd.service", "garrison-minio.service", "patroni.service", "garrison-pushproxy.service", "garrison.service", "garrison-agent.service"}, ha.Units(app1))
	require.Equal(t, []string{"garrison-agent", "root"}, ha.KeyOwners(edge))
	require.Equal(t, "https://10.0.0.11:9000/srv/minio/d1 https://10.0.0.11:9000/srv/minio/d2 https://10.0.0.12:9000/srv/minio/d1 https://10.0.0.12:9000/srv/minio/d2 https://10.0.0.13:9000/srv/minio/d1 https://10.0.0.13:9000/srv/minio/d2", ha.MinIOVolumes())
	require.Equal(t, "10.0.0.11:9000", ha.MinIOEndpoint(app1))
	require.Equal(t, "chat.example.mil", ha.SiteHost())

	dsn := ha.DSN("garrison", "pw", DBGarrison)
	require.Equal(t, "postgres://garrison:pw@10.0.0.11:5432,10.0.0.12:5432,10.0.0.13:5432/garrison?connect_timeout=3&sslmode=verify-full&sslrootcert=%2Fetc%2Fgarrison%2Ftls%2Fca.crt&target_session_attrs=read-write", dsn)
	require.Len(t, ha.ReplicaDSNs("garrison", "pw", DBGarrison), 3)

	one := testSite(t, "allinone.yaml")
	box := one.Inv.Nodes[0]
	require.Equal(t, []string{"etcd-server", "garrison", "garrison-pushproxy", "garrisonctl", "nginx", "patroni", "pgbackrest", "postgresql-15"}, one.Packages(box))
	var cfg map[string]map[string]any
	out, err := one.GarrisonConfig(box, fixedSecrets())
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(out, &cfg))
	require.Equal(t, "local", cfg["FileSettings"]["DriverName"])
	require.Equal(t, false, cfg["ClusterSettings"]["Enable"])
}

func TestPlanCoversEveryStep(t *testing.T) {
	t.Parallel()
	s := testSite(t, "ha.yaml")
	ids := s.StepIDs()
	require.Equal(t, []string{StepConnect, StepRepo, StepPackages, StepTLS, StepEtcd, StepStorage, StepDatabase, StepRoles, StepBackup, StepApp, StepAdmin, StepProxy, StepAgent, StepHealth}, ids)
	var b strings.Builder
	PrintPlan(&b, s, "1.2.3")
	require.Contains(t, b.String(), "edge1: garrisonctl nginx")
	require.Contains(t, b.String(), "repository 1.2.3")
	golden(t, "ha-plan.txt", []byte(b.String()))
}

func TestClusterReady(t *testing.T) {
	t.Parallel()
	m := func(name, role, state string) patroniMember {
		return patroniMember{Name: name, Role: role, State: state}
	}
	want := []string{"a", "b", "c"}
	for _, tc := range []struct {
		name    string
		members []patroniMember
		sync    bool
		err     string
	}{
		{"ready", []patroniMember{m("a", "leader", "running"), m("b", "sync_standby", "streaming"), m("c", "replica", "running")}, true, ""},
		{"master role", []patroniMember{m("a", "master", "running"), m("b", "replica", "running"), m("c", "replica", "running")}, false, ""},
		{"no leader", []patroniMember{m("a", "replica", "running"), m("b", "replica", "running"), m("c", "replica", "running")}, false, "0 running leaders"},
		{"missing", []patroniMember{m("a", "leader", "running"), m("b", "replica", "running")}, false, "c is not a member yet"},
		{"starting", []patroniMember{m("a", "leader", "running"), m("b", "replica", "starting"), m("c", "replica", "running")}, false, "b is starting"},
		{"no sync yet", []patroniMember{m("a", "leader", "running"), m("b", "replica", "running"), m("c", "replica", "running")}, true, "no synchronous standby"},
	} {
		err := clusterReady(tc.members, want, tc.sync)
		if tc.err == "" {
			require.NoError(t, err, tc.name)
		} else {
			require.ErrorContains(t, err, tc.err, tc.name)
		}
	}
}

func TestSecretsKeptAndNeverPrinted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s1, err := LoadSecrets(dir)
	require.NoError(t, err)
	require.NotEmpty(t, s1.Garrison)
	require.Len(t, s1.Garrison, 32)
	fi, err := os.Stat(filepath.Join(dir, secretsName))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	s2, err := LoadSecrets(dir)
	require.NoError(t, err)
	require.Equal(t, *s1, *s2, "a second load keeps the same secrets")
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		require.NotContains(t, fmt.Sprintf(f, s1), s1.Garrison)
		require.NotContains(t, fmt.Sprintf(f, *s1), s1.MinIOPassword)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, secretsName), []byte("{"), 0o600))
	_, err = LoadSecrets(dir)
	require.ErrorContains(t, err, "is damaged")

	for field, val := range map[string]string{"garrison_db": "x'; DROP ROLE postgres; --", "minio_password": "line\nMINIO_BROWSER=on", "gossip_key": "c2hvcnQ="} {
		data, err := json.Marshal(map[string]string{field: val})
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, secretsName), data, 0o600))
		_, err = LoadSecrets(dir)
		require.ErrorContains(t, err, field, "a hostile %s is refused", field)
	}
}

// MinIO refuses drives on the root disk; only an inventory that allows it
// (a test site) gets the setting that lifts that.
func TestMinIORootDriveOnlyWhenAllowed(t *testing.T) {
	t.Parallel()
	s := testSite(t, "ha.yaml")
	require.NotContains(t, string(s.MinIOEnv(fixedSecrets())), "MINIO_ROOTDRIVE_THRESHOLD_SIZE")
	s.Inv.Options.AllowDrivesOnRootDisk = true
	require.Contains(t, string(s.MinIOEnv(fixedSecrets())), "MINIO_ROOTDRIVE_THRESHOLD_SIZE=\"1B\"\n")
}

// A db node that is no storage node archives through the first storage
// node, named as in the certificates.
func TestPGBackRestEndpoint(t *testing.T) {
	t.Parallel()
	s := testSite(t, "ha.yaml")
	require.Contains(t, string(s.PGBackRest(s.Inv.Nodes[1], fixedSecrets())), "repo1-s3-endpoint=app2\n")
	s.Inv.Nodes[1].Roles = []string{inventory.RoleDB}
	require.Contains(t, string(s.PGBackRest(s.Inv.Nodes[1], fixedSecrets())), "repo1-s3-endpoint=app1\n")
}

func TestStanzaInInfo(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		json  string
		state stanzaState
		err   string
	}{
		{`[{"name":"garrison","status":{"code":1,"message":"missing stanza path"}}]`, stanzaMissing, ""},
		{`[{"name":"garrison","status":{"code":3,"message":"missing stanza data"}}]`, stanzaMissing, ""},
		{`[{"name":"garrison","status":{"code":2,"message":"no valid backups"}}]`, stanzaEmpty, ""},
		{`[{"name":"garrison","status":{"code":0,"message":"ok"}}]`, stanzaBackedUp, ""},
		{`[{"name":"garrison","status":{"code":99,"message":"other"}}]`, stanzaMissing, "other (code 99)"},
		{`[]`, stanzaMissing, ""},
		{`not json`, stanzaMissing, "pgbackrest info"},
	} {
		got, err := stanzaInInfo([]byte(c.json))
		if c.err != "" {
			require.ErrorContains(t, err, c.err, c.json)
			continue
		}
		require.NoError(t, err, c.json)
		require.Equal(t, c.state, got, c.json)
	}
}

// The backup units: only the primary of several db nodes backs up; the
// backup node always does; the timer runs nightly and catches up.
func TestBackupUnits(t *testing.T) {
	t.Parallel()
	ha := testSite(t, "ha.yaml")
	svc, timer := ha.BackupUnits(ha.Inv.Nodes[0])
	golden(t, "ha-backup.service", svc)
	golden(t, "ha-backup.timer", timer)
	require.Contains(t, string(svc), "ExecCondition=")
	require.Contains(t, string(svc), `"$$(date +%%u)"`) // systemd's escapes of $ and %
	require.Contains(t, string(svc), "--type=$$t backup")
	require.Contains(t, string(timer), "Persistent=true")
	b := testSite(t, "backup.yaml")
	svc, _ = b.BackupUnits(b.Inv.Nodes[1])
	require.NotContains(t, string(svc), "ExecCondition=")
}

// With a backup node the repository lives there, and each side's
// pgBackRest TLS server admits only the other side's certificates.
func TestPGBackRestBackupNode(t *testing.T) {
	t.Parallel()
	s := testSite(t, "backup.yaml")
	box, vault := s.Inv.Nodes[0], s.Inv.Nodes[1]
	golden(t, "backup-box-pgbackrest.conf", s.PGBackRest(box, fixedSecrets()))
	golden(t, "backup-vault-pgbackrest.conf", s.PGBackRest(vault, fixedSecrets()))
	require.Contains(t, string(s.PGBackRest(box, fixedSecrets())), "tls-server-auth=vault=garrison\n")
	require.Contains(t, string(s.PGBackRest(vault, fixedSecrets())), "tls-server-auth=box=garrison\n")
	require.Equal(t, []string{"pgbackrest.service", "garrison-agent.service"}, s.Units(vault))
	require.Contains(t, s.Units(box), "pgbackrest.service")
	require.Equal(t, []string{"garrison-agent", "postgres"}, s.KeyOwners(vault))
	require.Equal(t, []string{"garrisonctl", "pgbackrest"}, s.Packages(vault))
	agentJSON, err := s.AgentConfig(vault)
	require.NoError(t, err)
	cfg, err := agent.ParseConfig(agentJSON)
	require.NoError(t, err)
	require.Equal(t, []agent.Check{{Name: "pgbackrest", Kind: agent.KindTLS, URL: "tls://192.0.2.21:8432"}}, cfg.Checks)

	var plan strings.Builder
	PrintPlan(&plan, s, "1.2.3")
	require.Contains(t, plan.String(), "9. backup    create the pgBackRest stanza in the backup node vault")
	require.Contains(t, plan.String(), "              on: vault\n")

	// Three db nodes: the backup node admits each, one per line (a comma
	// would separate stanzas), and reaches each as pgN-host.
	multi := testSite(t, "ha.yaml")
	multi.Inv.Nodes[3].Roles = append(multi.Inv.Nodes[3].Roles, inventory.RoleBackup)
	edge := string(multi.PGBackRest(multi.Inv.Nodes[3], fixedSecrets()))
	golden(t, "ha-backup-edge1-pgbackrest.conf", []byte(edge))
	require.Contains(t, edge, "tls-server-auth=app1=garrison\ntls-server-auth=app2=garrison\ntls-server-auth=app3=garrison\n")
	require.Contains(t, edge, "pg3-host=app3\n")
	require.Contains(t, string(multi.PGBackRest(multi.Inv.Nodes[1], fixedSecrets())), "repo1-host=edge1\n")

	// Without a backup node no TLS server runs.
	ha := testSite(t, "ha.yaml")
	require.NotContains(t, ha.Units(ha.Inv.Nodes[0]), "pgbackrest.service")
	require.NotContains(t, string(ha.PGBackRest(ha.Inv.Nodes[0], fixedSecrets())), "tls-server")
}
