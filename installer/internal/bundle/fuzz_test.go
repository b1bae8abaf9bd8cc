package bundle

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/garrison-chat/garrison/installer/internal/bundle/bundletest"
)

// FuzzVerifyTar: whatever the tar stream holds, the checker neither panics
// nor passes a stream that is not the signed bundle.
func FuzzVerifyTar(f *testing.F) {
	b := bundletest.Write(f, version, map[string]string{"VERSION": version + "\n", "docs/a.md": "a"}, nil)
	good, err := os.ReadFile(b.Tar(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &checker{ctx: context.Background(), tar: true, trees: map[string]*tree{}}
		err := walkTar(bytes.NewReader(data), c.visit)
		if err != nil {
			c.problems = append(c.problems, Problem{Kind: KindCorrupt, Detail: err.Error()})
		}
		r := &Receipt{Files: []FileDigest{}, Problems: []Problem{}}
		c.finish(b.Key.Public, r)
		if r.Result == ResultPass && !bytes.HasPrefix(data, good[:len(good)-1024]) {
			t.Fatalf("passed a stream that is not the bundle")
		}
	})
}

// FuzzParsePackages: no panic, and every package has a name.
func FuzzParsePackages(f *testing.F) {
	f.Add(bundletest.Packages)
	f.Add("Package: a\r\n \r\nVersion: 1")
	f.Fuzz(func(t *testing.T, s string) {
		pkgs, err := ParsePackages(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" {
				t.Fatalf("a package without a name from %q", s)
			}
		}
	})
}
