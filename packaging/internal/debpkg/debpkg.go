// Package debpkg builds Garrison's own .deb packages with nfpm from the
// recipes in packaging/nfpm/*.yaml, reproducibly: every file's mode is
// set in the recipe (the build's umask does not matter), every mtime is
// SOURCE_DATE_EPOCH, and the maintainer scripts are rendered from one
// template (scripts.go).
package debpkg

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
)

// Build is one package to build.
type Build struct {
	Recipe  string            // path of the nfpm YAML recipe
	Vars    map[string]string // ${VAR} values for the recipe
	Service Service           // what the maintainer scripts manage
}

// Make builds the package into outDir and returns the file's path.
// scriptDir receives the rendered maintainer scripts.
func (b Build) Make(outDir, scriptDir string, mtime time.Time) (string, error) {
	vars := map[string]string{}
	for k, v := range b.Vars {
		vars[k] = v
	}
	for _, name := range []string{"postinst", "prerm", "postrm"} {
		text, err := b.Service.Script(name)
		if err != nil {
			return "", err
		}
		path := filepath.Join(scriptDir, b.Service.Package+"."+name)
		if err := os.WriteFile(path, text, 0o755); err != nil {
			return "", err
		}
		vars["SCRIPT_"+name] = path
	}
	// The whole recipe is expanded here: nfpm itself expands only some
	// fields, and a variable left unset is an error, not an empty path.
	recipe, err := os.ReadFile(b.Recipe)
	if err != nil {
		return "", err
	}
	missing := map[string]bool{}
	expanded := os.Expand(string(recipe), func(k string) string {
		v, ok := vars[k]
		if !ok {
			missing[k] = true
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("debpkg: %s: variables not set: %v", b.Recipe, keys(missing))
	}
	// Values land unquoted in YAML: only characters that cannot change
	// its structure (no ": ", " #", quotes or newlines) are allowed.
	for _, k := range keys(used(string(recipe))) {
		if !safeValue.MatchString(vars[k]) {
			return "", fmt.Errorf("debpkg: %s: %s=%q: only letters, digits and ._+~/-@ (not first) are allowed in paths and versions", b.Recipe, k, vars[k])
		}
	}
	// nfpm asks its mapping only for signing passphrases: the packages are
	// not signed one by one, the repository is.
	cfg, err := nfpm.ParseWithEnvMapping(strings.NewReader(expanded), func(string) string { return "" })
	if err != nil {
		return "", fmt.Errorf("debpkg: %s: %w", b.Recipe, err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return "", fmt.Errorf("debpkg: %s: %w", b.Recipe, err)
	}
	info.MTime = mtime.UTC()
	info.Target = ""
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", fmt.Errorf("debpkg: %s: %w", b.Recipe, err)
	}
	// PrepareForPackager stats sources for what the recipe left open; pin
	// what must not depend on the build machine.
	for _, c := range info.Contents {
		c.FileInfo.MTime = info.MTime
		if c.FileInfo.Owner == "" {
			c.FileInfo.Owner = "root"
		}
		if c.FileInfo.Group == "" {
			c.FileInfo.Group = "root"
		}
	}
	pkg := deb.Default
	path := filepath.Join(outDir, pkg.ConventionalFileName(info))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	if err := pkg.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("debpkg: %s: %w", info.Name, err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return path, nil
}

// '@' appears in module-cache paths (module@version); it is safe anywhere
// but first, where YAML reserves it.
var safeValue = regexp.MustCompile(`^[A-Za-z0-9._+~/-][A-Za-z0-9._+~/@-]*$`)

// used lists the variables a recipe refers to.
func used(recipe string) map[string]bool {
	m := map[string]bool{}
	os.Expand(recipe, func(k string) string { m[k] = true; return "" })
	return m
}

func keys(m map[string]bool) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}
