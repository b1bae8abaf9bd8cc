package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// runAs describes the postgres user that Postgres runs as when we are root.
type runAs struct {
	uid, gid int
	gids     []int // all groups of the postgres user, primary included
	runuser  string
}

func lookupRunAs() (*runAs, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, Postgres must run as the postgres user: %w "+
			"(installing postgresql-15 creates it)", err)
	}
	r := &runAs{}
	if r.uid, err = strconv.Atoi(u.Uid); err != nil {
		return nil, fmt.Errorf("postgres uid %q: %w", u.Uid, err)
	}
	if r.gid, err = strconv.Atoi(u.Gid); err != nil {
		return nil, fmt.Errorf("postgres gid %q: %w", u.Gid, err)
	}
	r.gids = []int{r.gid}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.Atoi(id); err == nil {
				r.gids = append(r.gids, g)
			}
		}
	}
	r.runuser, err = exec.LookPath("runuser")
	if err != nil {
		// $PATH may lack the sbin directories.
		for _, p := range []string{"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"} {
			if _, serr := os.Stat(p); serr == nil {
				r.runuser, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("running as root needs runuser (Debian package util-linux): %w", err)
	}
	return r, nil
}

// blockedAncestor returns the first existing ancestor of dir (dir itself
// excluded: Start makes it the postgres user's) that the postgres user
// cannot search, or "" when it can reach dir. Ancestors that do not exist
// yet are created searchable by prepareDir.
func (r *runAs) blockedAncestor(dir string) (string, error) {
	var ancestors []string
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		ancestors = append(ancestors, p)
		if p == filepath.Dir(p) {
			break
		}
	}
	slices.Reverse(ancestors) // from / down
	for _, p := range ancestors {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if !r.canSearch(fi) {
			return p, nil
		}
	}
	return "", nil
}

// canSearch applies the classic permission bits (ACLs are not consulted;
// initdb reports the rare case they matter).
func (r *runAs) canSearch(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	mode := fi.Mode().Perm()
	switch {
	case int(st.Uid) == r.uid:
		return mode&0o100 != 0
	case slices.Contains(r.gids, int(st.Gid)):
		return mode&0o010 != 0
	default:
		return mode&0o001 != 0
	}
}

// prepareDir creates the data directory if needed and, when we are root,
// makes sure it belongs to the postgres user.
func (c *Cluster) prepareDir() error {
	if c.runas == nil {
		return os.MkdirAll(c.dir, 0o700)
	}
	fi, err := os.Stat(c.dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := mkdirSearchable(filepath.Dir(c.dir)); err != nil {
			return err
		}
		if err := os.Mkdir(c.dir, 0o700); err != nil {
			return err
		}
		return os.Chown(c.dir, c.runas.uid, c.runas.gid)
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", c.dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) == c.runas.uid {
		return nil
	}
	if _, err := os.Stat(filepath.Join(c.dir, "PG_VERSION")); err == nil {
		return fmt.Errorf("%s holds a cluster owned by uid %d, not by the postgres user", c.dir, st.Uid)
	}
	// Only an empty directory is handed over: anything else is someone's
	// files, and initdb would refuse it anyway.
	if entries, err := os.ReadDir(c.dir); err != nil {
		return err
	} else if len(entries) > 0 {
		return fmt.Errorf("%s is not empty and holds no cluster (no PG_VERSION)", c.dir)
	}
	return os.Chown(c.dir, c.runas.uid, c.runas.gid)
}

// mkdirSearchable is os.MkdirAll with every new directory mode 0755
// whatever the umask, so that the postgres user can pass through them.
func mkdirSearchable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := mkdirSearchable(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil // created concurrently: not ours to chmod
		}
		return err
	}
	return os.Chmod(dir, 0o755)
}
