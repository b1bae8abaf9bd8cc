package systemd

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/stretchr/testify/require"
)

// spec is what one unit must say beyond the settings all share.
type spec struct {
	pkg       string   // the Debian package shipping it (its doc directory)
	exec      string   // ExecStart, whole
	user      string   // User= and Group=
	watchdog  string   // WatchdogSec=, "" for none
	after     []string // must be in After=
	families  string   // RestrictAddressFamilies=
	home      string   // ProtectHome=
	state     string   // StateDirectory=
	nofile    string   // LimitNOFILE=
	extraKeys map[string]string
}

// specs is the table of the four units. Exposure bounds are the issue's:
// 2.0 for the daemons; 4.0 for the agent and MinIO, whose exceptions each
// unit documents.
func specs() map[string]spec {
	return map[string]spec{
		"garrison.service": {
			pkg: "garrison", exec: "/usr/bin/garrison --config /etc/garrison/config.json", user: "garrison",
			watchdog: "60s", after: []string{"network-online.target", "postgresql.service", "patroni.service", "garrison-minio.service"},
			families: "AF_INET AF_INET6 AF_UNIX AF_NETLINK", home: "yes", state: "garrison", nofile: "1048576",
			extraKeys: map[string]string{"WorkingDirectory": "/var/lib/garrison"},
		},
		"garrison-pushproxy.service": {
			pkg: "garrison-pushproxy", exec: "/usr/bin/garrison-pushproxy --config /etc/garrison/pushproxy.json",
			user: "garrison-pushproxy", watchdog: "60s", after: []string{"network-online.target", "postgresql.service", "patroni.service"},
			families: "AF_INET AF_INET6 AF_UNIX", home: "yes", state: "garrison-pushproxy", nofile: "262144",
		},
		"garrison-agent.service": {
			pkg: "garrisonctl", exec: "/usr/bin/garrisonctl agent --config /etc/garrison/agent.json", user: "garrison-agent",
			watchdog: "30s", after: []string{"network-online.target"},
			families: "AF_INET AF_INET6 AF_UNIX AF_NETLINK", home: "read-only", state: "garrison-agent", nofile: "65536",
		},
		"garrison-minio.service": {
			pkg: "garrison-minio", exec: "/usr/bin/minio server $MINIO_OPTS $MINIO_VOLUMES", user: "garrison-minio",
			after: []string{"network-online.target"}, families: "AF_INET AF_INET6 AF_UNIX AF_NETLINK", home: "yes",
			state: "garrison-minio", nofile: "1048576",
			extraKeys: map[string]string{"EnvironmentFile": "/etc/garrison/minio.env", "Environment": "HOME=/var/lib/garrison-minio"},
		},
	}
}

// shared returns the [Service] settings every unit has, exactly.
func shared() map[string][]string {
	return map[string][]string{
		"Type": {"notify"}, "NotifyAccess": {"main"}, "Restart": {"on-failure"}, "RestartSec": {"5s"},
		"ConfigurationDirectory": {"garrison"}, "ConfigurationDirectoryMode": {"0755"}, "StateDirectoryMode": {"0750"},
		"UMask":                 {"0027"},
		"CapabilityBoundingSet": {""}, "AmbientCapabilities": {""}, "NoNewPrivileges": {"yes"},
		"ProtectSystem": {"strict"}, "PrivateTmp": {"yes"}, "PrivateDevices": {"yes"}, "DevicePolicy": {"closed"},
		"PrivateMounts": {"yes"}, "PrivateUsers": {"yes"},
		"ProtectKernelTunables": {"yes"}, "ProtectKernelModules": {"yes"}, "ProtectKernelLogs": {"yes"},
		"ProtectControlGroups": {"yes"}, "ProtectClock": {"yes"}, "ProtectHostname": {"yes"}, "ProtectProc": {"invisible"},
		"RestrictNamespaces": {"yes"}, "RestrictRealtime": {"yes"}, "RestrictSUIDSGID": {"yes"},
		"LockPersonality": {"yes"}, "MemoryDenyWriteExecute": {"yes"}, "RemoveIPC": {"yes"}, "KeyringMode": {"private"},
		"SystemCallArchitectures": {"native"},
		"SystemCallFilter":        {"@system-service", "~@privileged @resources"},
		"SystemCallErrorNumber":   {"EPERM"},
	}
}

// forbidden returns keys no unit may carry: a dynamic user would break
// the packages' static users and file ownership; hard dependencies would
// stop the server when a database on another node restarts; an IP allow
// list would cut cluster traffic; extra groups widen what a service reads.
func forbidden() []string {
	return []string{"DynamicUser", "Requires", "BindsTo", "Requisite", "IPAddressDeny", "IPAddressAllow",
		"SupplementaryGroups", "PermissionsStartOnly"}
}

func TestNames(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"garrison-agent.service", "garrison-minio.service", "garrison-pushproxy.service", "garrison.service"}, Names())
	_, err := Unit("nope.service")
	require.ErrorContains(t, err, `no unit "nope.service"`)
}

// parsed is a unit as section → key → values in file order.
type parsed map[string]map[string][]string

func parse(t *testing.T, name string) parsed {
	t.Helper()
	b, err := Unit(name)
	require.NoError(t, err)
	sections, err := unit.DeserializeSections(bytes.NewReader(b))
	require.NoError(t, err, name)
	out := parsed{}
	for _, s := range sections {
		if out[s.Section] == nil {
			out[s.Section] = map[string][]string{}
		}
		for _, e := range s.Entries {
			out[s.Section][e.Name] = append(out[s.Section][e.Name], e.Value)
		}
	}
	return out
}

func TestUnitKeys(t *testing.T) {
	t.Parallel()
	require.Len(t, specs(), len(Names()), "every embedded unit has a spec")
	for name, sp := range specs() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			u := parse(t, name)
			require.ElementsMatch(t, []string{"Unit", "Service", "Install"}, keys(u))
			svc := u["Service"]
			for k, v := range shared() {
				require.Equal(t, v, svc[k], "[Service] %s", k)
			}
			one := map[string]string{
				"ExecStart": sp.exec, "User": sp.user, "Group": sp.user, "RestrictAddressFamilies": sp.families,
				"ProtectHome": sp.home, "StateDirectory": sp.state, "LimitNOFILE": sp.nofile,
			}
			for k, v := range sp.extraKeys {
				one[k] = v
			}
			for k, v := range one {
				require.Equal(t, []string{v}, svc[k], "[Service] %s", k)
			}
			if sp.watchdog == "" {
				require.NotContains(t, svc, "WatchdogSec")
			} else {
				require.Equal(t, []string{sp.watchdog}, svc["WatchdogSec"])
			}
			require.NotContains(t, svc, "ProcSubset", "each unit documents why it keeps /proc whole")
			for _, section := range u {
				for _, k := range forbidden() {
					require.NotContains(t, section, k)
				}
			}
			require.Len(t, svc["TasksMax"], 1)

			un := u["Unit"]
			require.Len(t, un["Description"], 1)
			require.NotEmpty(t, un["Documentation"])
			for _, d := range un["Documentation"] {
				require.True(t, strings.HasPrefix(d, "file:/usr/share/doc/"+sp.pkg+"/"), "Documentation=%s", d)
			}
			require.Subset(t, strings.Fields(strings.Join(un["After"], " ")), sp.after)
			require.Equal(t, []string{"network-online.target"}, un["Wants"])
			require.Equal(t, []string{"multi-user.target"}, u["Install"]["WantedBy"])
		})
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// analyze returns the path of systemd-analyze, skipping the test when it
// is missing (failing it under CI=true).
func analyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("systemd-analyze is required under CI=true: %v", err)
		}
		t.Skipf("systemd-analyze not installed (apt-get install systemd): %v", err)
	}
	return p
}

// stage writes a unit into a new directory with its ExecStart program
// replaced by `true`: verify insists that the program exists, and our
// binaries are not installed on a build host. The arguments stay.
func stage(t *testing.T, name string) (dir, file string) {
	t.Helper()
	truePath, err := exec.LookPath("true")
	require.NoError(t, err)
	b, err := Unit(name)
	require.NoError(t, err)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "ExecStart="); ok {
			_, args, _ := strings.Cut(rest, " ")
			line = "ExecStart=" + truePath + " " + args
		}
		out = append(out, line)
	}
	dir = t.TempDir()
	file = filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(file, []byte(strings.Join(out, "\n")), 0o644))
	return dir, file
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, "%s %v: %v", name, args, err)
		code = ee.ExitCode()
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// TestVerify runs `systemd-analyze verify` on each unit. Unknown keys and
// bad values are only warnings there, with exit status 0, so stderr must
// be empty too; no line is filtered.
func TestVerify(t *testing.T) {
	t.Parallel()
	sa := analyze(t)
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, file := stage(t, name)
			r := run(t, sa, "verify", "--man=no", file)
			require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			require.Empty(t, r.stderr)
		})
	}
}

// TestSecurity bounds each unit's exposure as `systemd-analyze security
// --offline=yes` scores it (0 is best, 10 worst).
func TestSecurity(t *testing.T) {
	t.Parallel()
	sa := analyze(t)
	for name := range specs() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, file := stage(t, name)
			r := run(t, sa, "security", "--offline=yes", "--no-pager", file)
			require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			score, err := ParseExposure(r.stdout)
			require.NoError(t, err)
			limit, ok := MaxExposure(name)
			require.True(t, ok, "%s has an exposure bound", name)
			t.Logf("%s: exposure %.1f (at most %.1f)", name, score, limit)
			require.LessOrEqual(t, score, limit, "%s", r.stdout)
		})
	}
}

func TestMinIODrives(t *testing.T) {
	t.Parallel()
	got, err := MinIODrives([]string{"/srv/minio/d1", "/srv/minio/d2"})
	require.NoError(t, err)
	require.Equal(t, "# Written by garrisonctl from the inventory's drives for this node.\n"+
		"[Unit]\nRequiresMountsFor=/srv/minio/d1 /srv/minio/d2\n\n"+
		"[Service]\nReadWritePaths=/srv/minio/d1 /srv/minio/d2\n", string(got))

	for _, tc := range []struct {
		name   string
		drives []string
		want   string
	}{
		{"none", nil, "none given"},
		{"relative", []string{"srv/d1"}, `drives[0] "srv/d1": not an absolute path`},
		{"unclean", []string{"/srv/d1", "/srv/../etc"}, `drives[1] "/srv/../etc": not a clean path`},
		{"trailing slash", []string{"/srv/d1/"}, "not a clean path"},
		{"root", []string{"/"}, "not a clean path below /"},
		{"space", []string{"/srv/my drive"}, "holds a space"},
		{"specifier", []string{"/srv/%h"}, "holds a space, quote, backslash, '%'"},
		{"quote", []string{`/srv/"d1"`}, "holds a space"},
		{"newline", []string{"/srv/d1\nExecStartPre=/bin/evil"}, "holds a space"},
		{"twice", []string{"/srv/d1", "/srv/d1"}, `drives[1] "/srv/d1": listed twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := MinIODrives(tc.drives)
			require.ErrorContains(t, err, tc.want)
		})
	}
	require.Equal(t, "garrison-minio.service.d/drives.conf", filepath.Join(filepath.Base(filepath.Dir(MinIODropInPath)), filepath.Base(MinIODropInPath)))
}

// TestVerifyMinIOWithDrives checks the unit with the installer's drop-in
// beside it, where verify reads drop-ins from.
func TestVerifyMinIOWithDrives(t *testing.T) {
	t.Parallel()
	sa := analyze(t)
	dir, file := stage(t, "garrison-minio.service")
	dropIn, err := MinIODrives([]string{"/srv/minio/d1", "/srv/minio/d2"})
	require.NoError(t, err)
	require.NoError(t, os.Mkdir(filepath.Join(dir, "garrison-minio.service.d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "garrison-minio.service.d", "drives.conf"), dropIn, 0o644))
	r := run(t, sa, "verify", "--man=no", file)
	require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
	require.Empty(t, r.stderr)

	// The drop-in is read: a bad key in it would show.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "garrison-minio.service.d", "zz-bad.conf"), []byte("[Service]\nNoSuchKey=1\n"), 0o644))
	r = run(t, sa, "verify", "--man=no", file)
	require.Contains(t, r.stderr, "NoSuchKey")
}
