package app

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSanitizeFilename(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"photo.png", "photo.png"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\me\doc.pdf`, "doc.pdf"},
		{"a\x00b\x1fc.txt", "abc.txt"},
		{"..", ""},
		{"/", ""},
		{"", ""},
		{strings.Repeat("é", 300), strings.Repeat("é", 256)},
		{strings.Repeat("😀", 250), strings.Repeat("😀", maxFilenameBytes/4)},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, sanitizeFilename(tc.in), "%q", tc.in)
	}
}

func TestContentType(t *testing.T) {
	t.Parallel()
	tests := []struct{ sniffed, ext, want string }{
		{"image/png", "png", "image/png"},
		// Types from Go's built-in table, so the test does not depend on
		// the machine's mime.types.
		{"application/zip", "pdf", "application/pdf"},
		{"text/plain; charset=utf-8", "css", "text/css; charset=utf-8"},
		{"text/plain; charset=utf-8", "pdf", "text/plain; charset=utf-8"}, // text is not a document
		{"application/octet-stream", "png", "application/octet-stream"},   // images only by content
		{"text/html; charset=utf-8", "txt", "text/html; charset=utf-8"},   // content wins over a harmless name
		{"application/pdf", "txt", "application/pdf"},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, contentType(tc.sniffed, tc.ext), "%s .%s", tc.sniffed, tc.ext)
	}
}

func TestIsUnsafeContentType(t *testing.T) {
	t.Parallel()
	for typ, unsafe := range map[string]bool{
		"text/html; charset=utf-8": true, "application/javascript": true, "image/svg+xml": true, "TEXT/HTML": true,
		"image/png": false, "text/plain; charset=utf-8": false, "application/pdf": false,
	} {
		require.Equal(t, unsafe, IsUnsafeContentType(typ), typ)
	}
}
