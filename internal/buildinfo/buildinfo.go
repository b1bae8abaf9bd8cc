// Package buildinfo reports what binary is running: the release version
// (set at link time by the Makefile) and the source revision.
package buildinfo

import (
	"runtime/debug"
	"sync"
)

// version is set with -ldflags "-X .../buildinfo.version=1.2.3".
var version = "0.1.0-dev"

// revision is set with -ldflags "-X .../buildinfo.revision=<commit>" by
// builds that turn off the toolchain's VCS stamping (-buildvcs=false) to
// be reproducible from a source tree without its .git, as the bundle is.
var revision = ""

// Version returns the release version of this binary.
func Version() string { return version }

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	Modified  bool   `json:"modified"`
	GoVersion string `json:"go_version"`
}

var read = sync.OnceValue(func() Info {
	i := Info{Version: version, Revision: revision}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return i
	}
	i.GoVersion = bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if revision == "" {
				i.Revision = s.Value
			}
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
})

// Read returns the build information.
func Read() Info { return read() }

// String renders the information on one line.
func (i Info) String() string {
	s := i.Version
	if i.Revision != "" {
		r := i.Revision
		if len(r) > 12 {
			r = r[:12]
		}
		s += " (" + r
		if i.Modified {
			s += "+dirty"
		}
		s += ")"
	}
	if i.GoVersion != "" {
		s += " " + i.GoVersion
	}
	return s
}
