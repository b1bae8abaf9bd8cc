package bundle

import (
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode"
)

// WriteText writes a short human summary of a verification: which bundle,
// which version and key, how much was checked, the result, and every problem.
func (r *Receipt) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	b := r.Bundle
	switch b.Format {
	case FormatTar:
		ew.printf("Bundle:    %s (tar, %s, sha256 %s)\n", b.Path, HumanBytes(b.Size), short(b.SHA256))
	default:
		ew.printf("Bundle:    %s (directory %s)\n", b.Path, b.Dir)
	}
	if r.Version != "" {
		ew.printf("Version:   %s (source_date_epoch %d, %s)\n", r.Version, *r.SourceDateEpoch,
			time.Unix(*r.SourceDateEpoch, 0).UTC().Format(time.RFC3339))
	} else {
		ew.printf("Version:   unknown (no valid signature vouches for one)\n")
	}
	signed := r.SigningKeyID
	if signed == "" {
		signed = "unknown"
	}
	validity := "signature INVALID"
	if r.SignatureValid {
		validity = "signature valid"
	}
	ew.printf("Signed by: key %s, %s (trust anchor %s, %s)\n", signed, validity, r.TrustAnchor.KeyID, r.TrustAnchor.Source)
	ew.printf("Files:     %d checked, %s; MANIFEST lists %d (sha256 %s)\n", r.FilesChecked, HumanBytes(r.BytesChecked),
		r.ManifestEntries, short(r.ManifestSHA256))
	if r.Result == ResultPass {
		ew.printf("Result:    PASS: the signature is valid and every file matches MANIFEST, nothing missing, nothing extra\n")
		return ew.err
	}
	ew.printf("Result:    FAIL: %d problem%s\n", len(r.Problems), plural(len(r.Problems)))
	for _, p := range r.Problems {
		ew.printf("  %-12s %s\n", p.Kind, problemText(p))
	}
	return ew.err
}

func problemText(p Problem) string {
	switch {
	case p.Path == "":
		return p.Detail
	case p.Detail == "":
		return p.Path
	default:
		return p.Path + ": " + p.Detail
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// HumanBytes renders a byte count in binary units ("412.3 MiB").
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// errWriter keeps the first write error so that text output can be written
// without checking every line.
type errWriter struct {
	w   io.Writer
	err error
}

// printf writes to the terminal, so every string argument, which may come
// from the bundle (file names, package fields, SBOM names), is shown
// quoted when it holds anything but printable characters: a crafted name
// cannot move the cursor, recolour or rewrite the lines before it.
func (e *errWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	for i, a := range args {
		if s, ok := a.(string); ok && !printable(s) {
			args[i] = strconv.Quote(s)
		}
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// NewProgress returns a Progress callback that writes "<label>: 45% (180.0
// MiB of 400.0 MiB)" lines to w: at each 5% step but at most one a second,
// at least one every ten seconds while work goes on, and one at the end.
func NewProgress(w io.Writer, label string, now func() time.Time) func(done, total int64) {
	if now == nil {
		now = time.Now
	}
	var (
		last     time.Time
		lastStep int64 = -1
		finished bool
	)
	return func(done, total int64) {
		if total <= 0 || finished {
			return
		}
		step := done * 20 / total // 5% steps
		t := now()
		end := done >= total
		switch {
		case end:
			finished = true
		case step > lastStep && t.Sub(last) >= time.Second:
		case t.Sub(last) >= 10*time.Second:
		default:
			return
		}
		last, lastStep = t, step
		fmt.Fprintf(w, "%s: %3d%% (%s of %s)\n", label, done*100/total, HumanBytes(done), HumanBytes(total))
	}
}
