package debroot

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Each booted node gets a cgroup of its own. systemd-nspawn --keep-unit
// keeps the container in the cgroup of whoever started it and creates
// "payload" and "supervisor" cgroups in there; the systemd inside then
// manages its units below "payload". Two nodes started from one cgroup
// would share that tree, and one node's systemd removes the cgroups the
// other is about to use: seen as a unit failing with "Failed to attach to
// cgroup /system.slice/...: No such file or directory" (status
// 219/CGROUP) when two nodes boot at once. So the node's unshare process
// is moved into <own cgroup>/debroot-<machine> first, in every hierarchy
// systemd uses: the cgroup2 one, and the v1 name=systemd one on a hybrid
// host (like this machine, whose PID 1 is not systemd).

// nodeCgroups returns the directories of the cgroup called name below
// this process's own cgroup, one per hierarchy systemd uses.
func nodeCgroups(name string) ([]string, error) {
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	var dirs []string
	for key, mp := range mounts {
		p, ok := own[key]
		if !ok {
			return nil, fmt.Errorf("this process has no %s cgroup in /proc/self/cgroup", key)
		}
		dirs = append(dirs, filepath.Join(mp, p, name))
	}
	if len(dirs) == 0 {
		return nil, errors.New("no cgroup2 or name=systemd cgroup hierarchy is mounted")
	}
	return dirs, nil
}

// ownCgroups maps "unified" and "name=systemd" to this process's cgroup
// paths in those hierarchies.
func ownCgroups() (map[string]string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	own := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			own["unified"] = parts[2]
		case parts[1] == "name=systemd":
			own["name=systemd"] = parts[2]
		}
	}
	return own, nil
}

// cgroupMounts maps "unified" and "name=systemd" to the mount points of
// those hierarchies, when mounted.
func cgroupMounts() (map[string]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	mounts := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 4 || sep+3 > len(fields)-1 {
			continue
		}
		mp, fstype, opts := unescapeMountinfo(fields[4]), fields[sep+1], fields[sep+3]
		switch {
		case fstype == "cgroup2":
			if _, ok := mounts["unified"]; !ok {
				mounts["unified"] = mp
			}
		case fstype == "cgroup" && strings.Contains(","+opts+",", ",name=systemd,"):
			if _, ok := mounts["name=systemd"]; !ok {
				mounts["name=systemd"] = mp
			}
		}
	}
	return mounts, sc.Err()
}

// removeCgroups removes the cgroup directories dirs with everything the
// node's systemd created below them, deepest first. A cgroup still
// holding a process cannot be removed (EBUSY); the processes of a node
// that has just died may take a moment to leave, so it retries for a few
// seconds.
func removeCgroups(dirs []string) error {
	var errs []error
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for _, dir := range dirs {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := removeCgroup(dir)
			if err == nil || !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				if err != nil {
					errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
				}
				break
			}
			<-tick.C
		}
	}
	return errors.Join(errs...)
}

func removeCgroup(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroup(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	// cgroupfs: rmdir removes a cgroup with its control files.
	if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, syscall.ENOENT) {
		return err
	}
	return nil
}

// enterCgroupsScript moves itself into the cgroups whose cgroup.procs
// files it is given and then runs the command:
//
//	sh -c enterCgroupsScript sh N procs-file... command...
const enterCgroupsScript = `n=$1
shift
while [ "$n" -gt 0 ]; do
	echo $$ > "$1" || exit 125
	shift
	n=$((n-1))
done
exec "$@"
`
