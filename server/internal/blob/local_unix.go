package blob

import (
	"errors"
	"syscall"
)

// isNotDir reports ENOTDIR: a path goes through a file ("a/b/c" when "a/b"
// is an object), which for lookups means the key does not exist.
func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }
