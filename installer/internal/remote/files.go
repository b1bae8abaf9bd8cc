package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Exit statuses the file scripts use to say something callers act on
// (sysexits.h's EX_DATAERR and EX_NOINPUT).
const (
	statusMismatch = 65 // what was written is not what was sent
	statusNotExist = 66 // the file does not exist
)

// script is a command line that runs body with args as "$1", "$2", …
func script(body string, args ...string) string {
	var b strings.Builder
	b.WriteString("set --")
	for _, a := range args {
		b.WriteString(" ")
		b.WriteString(Quote(a))
	}
	b.WriteString("\n")
	b.WriteString(body)
	return b.String()
}

// uploadProbe reports the target's mode and sha256 and, if a .part exists,
// its size and, when it is no larger than the local file ($3), its sha256.
// $1 is the target, $2 the .part.
const uploadProbe = `set -e
if [ -e "$1" ] || [ -L "$1" ]; then
	[ -f "$1" ] || { echo "$1 exists and is not a regular file" >&2; exit 1; }
	m=$(stat -L -c %a -- "$1")
	h=$(sha256sum < "$1")
	echo "target $m ${h%% *}"
fi
if [ -f "$2" ] && [ ! -L "$2" ]; then
	s=$(stat -c %s -- "$2")
	if [ "$s" -le "$3" ]; then
		h=$(sha256sum < "$2")
		echo "part $s ${h%% *}"
	fi
fi
`

// uploadSend creates (with $3 = new) or appends to the .part file $1 from
// standard input, creating its directory $2. A new .part is private until
// uploadFinish sets its mode.
const uploadSend = `set -e
mkdir -p -- "$2"
if [ "$3" = new ]; then
	umask 077
	cat > "$1"
else
	cat >> "$1"
fi
`

// uploadFinish checks the .part $1 against the sha256 $3, sets its mode $4
// and renames it to the target $2.
const uploadFinish = `set -e
h=$(sha256sum < "$1")
if [ "${h%% *}" != "$3" ]; then
	rm -f -- "$1"
	echo "$1 does not have the sha256 of the local file" >&2
	exit 65
fi
chmod "$4" "$1"
mv -f -- "$1" "$2"
`

// Upload copies the local file to remotePath on the node with the given
// mode, and reports whether it changed anything.
//
// It is idempotent and resumable: when remotePath already has the local
// file's sha256 and mode, nothing is sent (a different mode alone is
// fixed with chmod). Otherwise the file is written to remotePath+".part",
// appending to a .part that an interrupted upload left if that is a prefix
// of the local file, then checked against the local sha256, given its mode
// and renamed into place, so remotePath is never half written. Parent
// directories are created. The file streams; it is never read into memory
// whole.
//
// progress, if not nil, is called from another goroutine, one call at a
// time, as bytes go: sent counts the bytes of the file on the node,
// including a resumed prefix, and total is the file's size.
//
// Upload is for software and data; the sha256 of the file appears on the
// node's command lines. Secrets go through WriteFile.
func (c *Client) Upload(ctx context.Context, local, remotePath string, mode fs.FileMode, progress func(sent, total int64)) (changed bool, err error) {
	op := fmt.Sprintf("upload %s to %s", local, remotePath)
	fail := func(err error) (bool, error) {
		return false, &opError{node: c.target.Name, op: op, err: err}
	}
	if err := checkRemotePath(remotePath); err != nil {
		return fail(err)
	}
	m, err := octalMode(mode)
	if err != nil {
		return fail(err)
	}
	f, err := os.Open(local)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if !st.Mode().IsRegular() {
		return fail(fmt.Errorf("%s is not a regular file", local))
	}
	size := st.Size()
	sum, err := hashPrefix(ctx, f, size)
	if err != nil {
		return fail(fmt.Errorf("read %s: %w", local, err))
	}

	part := remotePath + ".part"
	res, err := c.run(ctx, script(uploadProbe, remotePath, part, strconv.FormatInt(size, 10)), nil)
	if err != nil {
		return fail(err)
	}
	target, partSize, partSum, err := parseProbe(res.Stdout)
	if err != nil {
		return fail(err)
	}
	if target.sum == sum {
		if target.mode == m {
			return false, nil
		}
		if _, err := c.run(ctx, script(`chmod "$2" "$1"`, remotePath, m), nil); err != nil {
			return fail(err)
		}
		return true, nil
	}

	var offset int64
	if partSize > 0 {
		prefix, err := hashPrefix(ctx, f, partSize)
		if err != nil {
			return fail(fmt.Errorf("read %s: %w", local, err))
		}
		if prefix == partSum {
			offset = partSize
			c.logf("remote: %s: resuming the upload of %s at byte %d of %d", c.target.Name, remotePath, offset, size)
		}
	}
	for {
		if progress != nil {
			progress(offset, size)
		}
		if offset == 0 || offset < size { // else the .part is complete
			how := "append"
			if offset == 0 {
				how = "new"
			}
			in := &progressReader{ctx: ctx, r: io.NewSectionReader(f, offset, size-offset), sent: offset, total: size, progress: progress}
			if _, err := c.run(ctx, script(uploadSend, part, path.Dir(remotePath), how), in); err != nil {
				return fail(err)
			}
		}
		_, err := c.run(ctx, script(uploadFinish, part, remotePath, sum, m), nil)
		var exit *ExitError
		if errors.As(err, &exit) && exit.Status == statusMismatch && offset > 0 {
			// The .part changed under us; uploadFinish removed it.
			c.logf("remote: %s: the resumed %s did not check out; uploading it again from the start", c.target.Name, part)
			offset = 0
			continue
		}
		if err != nil {
			return fail(err)
		}
		return true, nil
	}
}

// remoteFile is what a probe says about a file on the node: its mode in
// octal, its owner as uid:gid and user:group, its sha256 in hex; all empty
// when the file does not exist.
type remoteFile struct {
	mode, ids, names, sum string
}

// parseProbe reads uploadProbe's output. partSize is 0 when there is no
// usable .part.
func parseProbe(out []byte) (target remoteFile, partSize int64, partSum string, err error) {
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case len(f) == 3 && f[0] == "target":
			target.mode, target.sum = f[1], f[2]
		case len(f) == 3 && f[0] == "part":
			if partSize, err = strconv.ParseInt(f[1], 10, 64); err != nil {
				return target, 0, "", fmt.Errorf("unexpected probe output %q", line)
			}
			partSum = f[2]
		default:
			return target, 0, "", fmt.Errorf("unexpected probe output %q", line)
		}
	}
	return target, partSize, partSum, nil
}

// progressReader reports bytes as they are read and stops when ctx ends.
type progressReader struct {
	ctx         context.Context
	r           io.Reader
	sent, total int64
	progress    func(sent, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	if n > 0 {
		p.sent += int64(n)
		if p.progress != nil {
			p.progress(p.sent, p.total)
		}
	}
	return n, err
}

// hashPrefix is the hex sha256 of f's first n bytes.
func hashPrefix(ctx context.Context, f io.ReaderAt, n int64) (string, error) {
	h := sha256.New()
	r := &progressReader{ctx: ctx, r: io.NewSectionReader(f, 0, n)}
	got, err := io.Copy(h, r)
	if err != nil {
		return "", err
	}
	if got != n {
		return "", fmt.Errorf("read %d bytes, want %d: the file shrank", got, n)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeProbe reports the mode, owner and sha256 of the file $1, or nothing
// when it does not exist.
const writeProbe = `set -e
if [ -e "$1" ] || [ -L "$1" ]; then
	[ -f "$1" ] || { echo "$1 exists and is not a regular file" >&2; exit 1; }
	s=$(stat -L -c '%a %u:%g %U:%G' -- "$1")
	h=$(sha256sum < "$1")
	echo "$s ${h%% *}"
fi
`

// writeFile writes standard input, after a first line holding its sha256,
// to a hidden temporary file next to $1 (mktemp makes it 0600), checks it,
// gives it the owner $5 (if not empty) and the mode $4, and renames it to
// $1. $2 and $3 are $1's directory and base name. The data and its sha256
// never appear on a command line.
const writeFile = `set -e
mkdir -p -- "$2"
t=$(mktemp "$2/.$3.XXXXXX")
trap 'rm -f -- "$t"' EXIT
IFS= read -r want
cat > "$t"
h=$(sha256sum < "$t")
if [ "${h%% *}" != "$want" ]; then
	echo "what was written is not what was sent" >&2
	exit 65
fi
if [ -n "$5" ]; then chown "$5" "$t"; fi
chmod "$4" "$t"
mv -f -- "$t" "$1"
trap - EXIT
`

// ownerRE is what WriteFile's owner may look like: user:group, each a name
// or a numeric id.
var ownerRE = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_.-]*\$?|[0-9]+):([A-Za-z_][A-Za-z0-9_.-]*\$?|[0-9]+)$`)

// WriteFile replaces the file remotePath on the node with data, mode and
// owner ("user:group", names or numeric ids; "" leaves a new file owned by
// root), and reports whether it changed anything: nothing is written when
// content, mode and owner are already right.
//
// The file is replaced atomically (a temporary file in the same directory,
// checked, then renamed); parent directories are created. data may be a
// secret: it goes to the node over the command's standard input, never on a
// command line, and is never logged.
func (c *Client) WriteFile(ctx context.Context, remotePath string, data []byte, mode fs.FileMode, owner string) (changed bool, err error) {
	fail := func(err error) (bool, error) {
		return false, &opError{node: c.target.Name, op: "write " + remotePath, err: err}
	}
	if err := checkRemotePath(remotePath); err != nil {
		return fail(err)
	}
	m, err := octalMode(mode)
	if err != nil {
		return fail(err)
	}
	if owner != "" && !ownerRE.MatchString(owner) {
		return fail(fmt.Errorf("owner %q: want user:group", owner))
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])

	res, err := c.run(ctx, script(writeProbe, remotePath), nil)
	if err != nil {
		return fail(err)
	}
	if f := strings.Fields(string(res.Stdout)); len(f) == 4 {
		cur := remoteFile{mode: f[0], ids: f[1], names: f[2], sum: f[3]}
		if cur.sum == want && cur.mode == m && ownerMatches(owner, cur) {
			return false, nil
		}
	} else if len(f) != 0 {
		return fail(fmt.Errorf("unexpected probe output %q", res.Stdout))
	}

	in := io.MultiReader(strings.NewReader(want+"\n"), bytes.NewReader(data))
	if _, err := c.run(ctx, script(writeFile, remotePath, path.Dir(remotePath), path.Base(remotePath), m, owner), in); err != nil {
		return fail(err)
	}
	return true, nil
}

// ownerMatches reports whether the file cur has owner, which is "" (any)
// or user:group with names or ids.
func ownerMatches(owner string, cur remoteFile) bool {
	if owner == "" {
		return true
	}
	want := strings.SplitN(owner, ":", 2)
	ids := strings.SplitN(cur.ids, ":", 2)
	names := strings.SplitN(cur.names, ":", 2)
	if len(ids) != 2 || len(names) != 2 {
		return false
	}
	for i := range 2 {
		if want[i] != ids[i] && want[i] != names[i] {
			return false
		}
	}
	return true
}

// readFile prints $1, or exits with statusNotExist when there is no such
// file.
const readFile = `[ -e "$1" ] || exit 66
exec cat -- "$1"
`

// ReadFile returns the content of the file remotePath on the node. A
// missing file is an error matching fs.ErrNotExist.
func (c *Client) ReadFile(ctx context.Context, remotePath string) ([]byte, error) {
	fail := func(err error) ([]byte, error) {
		return nil, &opError{node: c.target.Name, op: "read " + remotePath, err: err}
	}
	if err := checkRemotePath(remotePath); err != nil {
		return fail(err)
	}
	res, err := c.run(ctx, script(readFile, remotePath), nil)
	var exit *ExitError
	if errors.As(err, &exit) && exit.Status == statusNotExist {
		return fail(fs.ErrNotExist)
	}
	if err != nil {
		return fail(err)
	}
	return res.Stdout, nil
}

// checkRemotePath accepts absolute, clean paths of files.
func checkRemotePath(p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" || strings.ContainsAny(p, "\x00\n") {
		return fmt.Errorf("remote path %q: want an absolute, clean file path", p)
	}
	return nil
}

// octalMode is mode as chmod and stat -c %a write it.
func octalMode(mode fs.FileMode) (string, error) {
	if mode&^(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		return "", fmt.Errorf("mode %v: want permission bits only", mode)
	}
	m := uint64(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return strconv.FormatUint(m, 8), nil
}
