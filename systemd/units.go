// Package systemd holds the systemd units of Garrison's services. The
// .service files beside this one are the source: the packaging ships each
// in its .deb (the nfpm recipes name the files), and the installer takes
// them from here (Units) and writes the MinIO drives drop-in.
//
// units_test.go checks their keys, runs `systemd-analyze verify` (empty
// stderr) and bounds their `systemd-analyze security` exposure by
// MaxExposure; the bundle's tests (test/bundle) repeat the last two inside
// a Debian root with the packages installed.
package systemd

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// MaxExposure is the highest `systemd-analyze security` exposure a unit
// may have: 2.0 for the daemons, 4.0 for the agent and MinIO, whose
// exceptions each unit file explains. Units not listed have no bound.
func MaxExposure(unit string) (float64, bool) {
	switch unit {
	case "garrison.service", "garrison-pushproxy.service":
		return 2.0, true
	case "garrison-agent.service", "garrison-minio.service":
		return 4.0, true
	}
	return 0, false
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d+)`)

// ParseExposure reads the overall exposure from the output of
// `systemd-analyze security UNIT`.
func ParseExposure(out string) (float64, error) {
	m := exposureRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("systemd: no overall exposure level in %q", out)
	}
	return strconv.ParseFloat(m[1], 64)
}

// Units holds the unit files at its root: garrison.service,
// garrison-pushproxy.service, garrison-agent.service and
// garrison-minio.service. It is never written to.
//
//go:embed *.service
var Units embed.FS

// Names lists the embedded units, sorted.
func Names() []string {
	names, err := fs.Glob(Units, "*.service")
	if err != nil {
		panic(err) // the pattern is constant and valid
	}
	return names
}

// Unit returns the content of the named unit ("garrison.service").
func Unit(name string) ([]byte, error) {
	b, err := Units.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("systemd: no unit %q", name)
	}
	return b, nil
}

// MinIODropInPath is where the installer writes MinIODrives' drop-in.
const MinIODropInPath = "/etc/systemd/system/garrison-minio.service.d/drives.conf"

// MinIODrives renders the drop-in that lets garrison-minio.service write
// to this node's drives (the inventory's `drives`) and wait for their
// mounts; the unit itself may write only /var/lib/garrison-minio. Each
// drive must be an absolute, clean path of plain characters: systemd
// would read spaces, quotes, backslashes and '%' in these settings as
// separators, escapes or specifiers.
func MinIODrives(drives []string) ([]byte, error) {
	if len(drives) == 0 {
		return nil, fmt.Errorf("systemd: drives: none given")
	}
	seen := map[string]bool{}
	for i, d := range drives {
		switch {
		case !strings.HasPrefix(d, "/"):
			return nil, fmt.Errorf("systemd: drives[%d] %q: not an absolute path", i, d)
		case path.Clean(d) != d || d == "/":
			return nil, fmt.Errorf("systemd: drives[%d] %q: not a clean path below / (want %q)", i, d, path.Clean(d))
		case strings.ContainsFunc(d, badPathRune):
			return nil, fmt.Errorf("systemd: drives[%d] %q: holds a space, quote, backslash, '%%' or control character", i, d)
		case seen[d]:
			return nil, fmt.Errorf("systemd: drives[%d] %q: listed twice", i, d)
		}
		seen[d] = true
	}
	list := strings.Join(drives, " ")
	return []byte("# Written by garrisonctl from the inventory's drives for this node.\n" +
		"[Unit]\nRequiresMountsFor=" + list + "\n\n" +
		"[Service]\nReadWritePaths=" + list + "\n"), nil
}

func badPathRune(r rune) bool {
	return r <= ' ' || r == 0x7f || strings.ContainsRune(`"'\%`, r)
}
