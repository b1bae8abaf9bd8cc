// Package systemd holds the systemd units of Garrison's services, embedded
// for the packaging (which ships each in its .deb) and the installer
// (which writes the MinIO drives drop-in).
//
// The .service files beside this one are the source; units_test.go checks
// their keys, runs `systemd-analyze verify` (empty stderr) and bounds
// their `systemd-analyze security` exposure.
package systemd

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

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
