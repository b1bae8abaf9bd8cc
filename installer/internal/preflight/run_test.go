package preflight

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/installer/internal/remote"
)

// Run takes the connections install and garrisonctl have.
var _ = Run[*remote.Client]

// fakeNode answers the script with canned output.
type fakeNode struct {
	out string
	err error

	mu   sync.Mutex // guards cmds
	cmds []string
}

func (f *fakeNode) Run(_ context.Context, cmd string, _ io.Reader) (remote.Result, error) {
	f.mu.Lock()
	f.cmds = append(f.cmds, cmd)
	f.mu.Unlock()
	return remote.Result{Stdout: []byte(f.out)}, f.err
}

// healthy is a node that passes everything; its clock reads clock.
func healthy(clock string, extra ...string) string {
	lines := []string{
		"version=" + scriptVersion,
		"os_id=debian", "os_version_id=12", "os_pretty=Debian GNU/Linux 12 (bookworm)", "arch=amd64",
		"nproc=8", "mem_kb=16777216",
		"fs=root 2049 1048576 102400 51200", "fs=varlib 2049 1048576 102400 51200",
		"drive=0 dir 2051 1048576 102400 51200 1", "drive=1 dir 2052 1048576 102400 51200 1",
		"resolve=app1 10.0.0.11", "resolve=app2 10.0.0.12", "resolve=app3 10.0.0.13",
		"resolve=app3.example.test 10.0.0.13", "resolve=edge1 10.0.0.21",
		"port_range=32768 60999", "ports_source=ss",
		"fsync=50000000 50",
	}
	lines = append(lines, extra...)
	lines = append(lines, "time="+clock)
	return strings.Join(lines, "\n") + "\n"
}

func TestRun(t *testing.T) {
	t.Parallel()
	inv := parseInv(t, haYAML)
	hk, fp := pinnedKeys(t, "app1", "app3")
	app1 := &fakeNode{out: healthy("1000.000000000")}
	app3 := &fakeNode{err: errors.New("remote: app3: run \"# garrisonctl preflight …\": connection lost")}
	nodes := map[string]*fakeNode{"app1": app1, "app2": nil, "app3": app3}
	now := time.Unix(1000, 0)
	r := Run(context.Background(), inv, nodes, Options{
		BundleSize: 300 * MiB,
		Now:        func() time.Time { return now },
		HostKeys:   hk,
		DialErrors: map[string]error{"app2": errors.New("remote: app2: connect root@10.0.0.12:22: connection refused")},
	})
	require.Equal(t, []string{
		"app1/ssh", "app1/os", "app1/cpu", "app1/memory", "app1/disk", "app1/drives", "app1/ports", "app1/names", "app1/clock", "app1/fsync",
		"app2/ssh", "app3/ssh", "app3/facts", "edge1/ssh",
	}, rowNames(r.Checks))
	for _, c := range r.Checks[:10] {
		require.Equal(t, Pass, c.Status, "%s: %s", c.Name, c.Detail)
	}
	require.Contains(t, r.Checks[0].Detail, fp)
	require.Equal(t, Check{Node: "app2", Name: "ssh", Status: Fail, Detail: "cannot connect: remote: app2: connect root@10.0.0.12:22: connection refused"}, r.Checks[10])
	require.Equal(t, Pass, r.Checks[11].Status)
	require.Equal(t, Check{Node: "app3", Name: "facts", Status: Fail, Detail: "could not run the checks on the node: " + app3.err.Error()}, r.Checks[12])
	require.Equal(t, Check{Node: "edge1", Name: "ssh", Status: Fail, Detail: "not connected"}, r.Checks[13])
	require.True(t, r.Failed())

	// One command per node: the whole script, naming the node's drives,
	// names and ports.
	require.Len(t, app1.cmds, 1)
	require.Contains(t, app1.cmds[0], "for d in '/srv/d1' '/srv/d2';")
	require.Contains(t, app1.cmds[0], "for n in 'app2' 'app3' 'app3.example.test' 'edge1';")
	require.Contains(t, app1.cmds[0], "PORTS='2379 2380 5432 8008 8065 8066 8067 8069 8074 9000 9001 9100'")
	require.True(t, strings.HasPrefix(app1.cmds[0], "# garrisonctl preflight"), "the first line names the script in error messages")
	require.NotContains(t, app1.cmds[0], "{{")
}

func TestRunClock(t *testing.T) {
	t.Parallel()
	inv := parseInv(t, aioYAML)
	// The node read 1010.3 on its clock just before answering; the answer
	// arrived at 1000.3 on the admin machine's.
	now := func() time.Time { return time.Unix(1000, 300_000_000) }
	box := &fakeNode{out: healthy("1010.300000000")}
	r := Run(context.Background(), inv, map[string]*fakeNode{"box": box}, Options{Now: now})
	var clock Check
	for _, c := range r.Checks {
		if c.Name == "clock" {
			clock = c
		}
	}
	require.Equal(t, Check{Node: "box", Name: "clock", Status: Fail,
		Detail: "10.000 s ahead of the admin machine; certificates, etcd and Patroni need clocks within 0.500 s: " +
			"run NTP (systemd-timesyncd or chrony) on every node"}, clock)
}

func TestRunCancelled(t *testing.T) {
	t.Parallel()
	inv := parseInv(t, aioYAML)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	box := &blockingNode{}
	r := Run(ctx, inv, map[string]Runner{"box": box}, Options{})
	require.Equal(t, []string{"box/ssh", "box/facts"}, rowNames(r.Checks))
	require.Contains(t, r.Checks[1].Detail, context.Canceled.Error())
}

// blockingNode runs until its context ends, as a hung node would.
type blockingNode struct{}

func (blockingNode) Run(ctx context.Context, _ string, _ io.Reader) (remote.Result, error) {
	<-ctx.Done()
	return remote.Result{ExitStatus: -1}, ctx.Err()
}

func TestReportOutput(t *testing.T) {
	t.Parallel()
	r := &Report{Checks: []Check{
		{Node: "app1", Name: "ssh", Status: Pass, Detail: "connected as root"},
		{Node: "app1", Name: "ports", Status: Fail, Detail: "8065/tcp is in use by java (pid 7)\n\x1b[2Jsurprise"},
		{Node: "edge1", Name: "memory", Status: Warn, Detail: "512 MiB"},
	}}
	var b bytes.Buffer
	require.NoError(t, r.WriteTable(&b))
	require.Equal(t, `NODE   CHECK   STATUS  DETAIL
app1   ssh     pass    connected as root
app1   ports   fail    8065/tcp is in use by java (pid 7) [2Jsurprise
edge1  memory  warn    512 MiB

3 checks on 2 nodes: 1 pass, 1 warn, 1 fail; an install refuses to start until every failure is fixed (or it is forced)
`, b.String())
	require.True(t, r.Failed())

	data, err := json.Marshal(r)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(data, &got))
	require.Equal(t, map[string]any{
		"checks": []any{
			map[string]any{"node": "app1", "check": "ssh", "status": "pass", "detail": "connected as root"},
			map[string]any{"node": "app1", "check": "ports", "status": "fail", "detail": "8065/tcp is in use by java (pid 7)\n\x1b[2Jsurprise"},
			map[string]any{"node": "edge1", "check": "memory", "status": "warn", "detail": "512 MiB"},
		},
		"pass": 1.0, "warn": 1.0, "fail": 1.0, "failed": true,
	}, got)
	var back Report
	require.NoError(t, json.Unmarshal(data, &back))
	require.Equal(t, r.Checks, back.Checks)

	ok := &Report{Checks: r.Checks[:1]}
	require.False(t, ok.Failed())
	require.Equal(t, "1 check on 1 node: 1 pass, 0 warn, 0 fail; no check failed", ok.Summary())
	data, err = json.Marshal(&Report{})
	require.NoError(t, err)
	require.JSONEq(t, `{"checks":[],"pass":0,"warn":0,"fail":0,"failed":false}`, string(data))
}
