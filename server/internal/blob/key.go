package blob

import (
	"fmt"
	"strings"
)

// maxKeyLen bounds a key; S3 allows 1024 bytes for the whole object name,
// which also has to hold the path prefix.
const maxKeyLen = 900

// tmpPrefix starts the names of Local's in-progress files. Keys may not
// have a segment starting with it, so a temporary file is never mistaken
// for an object.
const tmpPrefix = ".garrison-tmp-"

// checkKey reports whether key is a valid object key: non-empty
// slash-separated segments, none of them "." or "..", no leading slash, no
// NUL byte or backslash, at most maxKeyLen bytes.
func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(key) > maxKeyLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, maxKeyLen)
	}
	if strings.ContainsAny(key, "\x00\\") {
		return fmt.Errorf("%w: %q contains a NUL byte or a backslash", ErrInvalidKey, key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("%w: %q is absolute or has an empty segment", ErrInvalidKey, key)
		case seg == "." || seg == "..":
			return fmt.Errorf("%w: %q has a %q segment", ErrInvalidKey, key, seg)
		case strings.HasPrefix(seg, tmpPrefix):
			return fmt.Errorf("%w: %q has a reserved segment", ErrInvalidKey, key)
		}
	}
	return nil
}

// checkPrefix validates a List prefix: empty, or a key or the start of
// one (a trailing slash is allowed).
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return checkKey(strings.TrimSuffix(prefix, "/"))
}
