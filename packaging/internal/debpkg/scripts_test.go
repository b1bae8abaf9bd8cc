package debpkg

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestScriptsParseAsShell(t *testing.T) {
	t.Parallel()
	svcs := []Service{
		{Package: "garrison", User: "garrison", Gecos: "Garrison server", Home: "/var/lib/garrison",
			Dirs: []string{"/var/lib/garrison/data"}, Configs: []string{"/etc/garrison/config.json"}, Unit: "garrison.service"},
		{Package: "nouser", Unit: "nouser.service"},
	}
	for _, s := range svcs {
		for _, name := range []string{"postinst", "prerm", "postrm"} {
			text, err := s.Script(name)
			require.NoError(t, err)
			path := filepath.Join(t.TempDir(), name)
			require.NoError(t, os.WriteFile(path, text, 0o755))
			out, err := exec.Command("sh", "-n", path).CombinedOutput()
			require.NoError(t, err, "%s %s: %s\n%s", s.Package, name, out, text)
		}
	}
	text, err := svcs[0].Script("postinst")
	require.NoError(t, err)
	require.Contains(t, string(text), "adduser --system --quiet --ingroup garrison --home /var/lib/garrison")
	require.Contains(t, string(text), "chown root:garrison /etc/garrison/config.json")
	require.Contains(t, string(text), "install -d -o garrison -g garrison -m 0750 /var/lib/garrison/data")
	text, err = svcs[1].Script("postinst")
	require.NoError(t, err)
	require.NotContains(t, string(text), "adduser")
}

func TestRecipeValuesCannotChangeTheYAML(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	recipe := filepath.Join(dir, "x.yaml")
	require.NoError(t, os.WriteFile(recipe, []byte("name: x\nversion: ${VERSION}\narch: amd64\n"), 0o644))
	b := Build{Recipe: recipe, Service: Service{Package: "x", Unit: "x.service"}}
	for vars, want := range map[string]string{
		"":             "variables not set: [VERSION]",
		"1.0\nevil: 1": `VERSION="1.0\nevil: 1": only letters`,
		"1.0 #x":       `VERSION="1.0 #x"`,
		"@1.0":         `VERSION="@1.0"`,
	} {
		b.Vars = map[string]string{}
		if vars != "" {
			b.Vars["VERSION"] = vars
		}
		_, err := b.Make(t.TempDir(), t.TempDir(), time.Unix(1, 0))
		require.ErrorContains(t, err, want)
	}
	b.Vars = map[string]string{"VERSION": "1.0+mod@v1"}
	path, err := b.Make(t.TempDir(), t.TempDir(), time.Unix(1, 0))
	require.NoError(t, err)
	require.FileExists(t, path)
}
