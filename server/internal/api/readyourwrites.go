package api

import (
	"context"
	"net/http"
)

// noteWrites serves a request of userID so that, if it writes, every node
// learns it before the answer leaves (app.App.NoteWrites): the user's
// next request, on any node, then reads nothing older than the write. It
// returns the writer and context to serve the request with, and a func to
// call once the handler has returned, for an answer it did not write
// (an error is rendered after the handler returns).
func (a *API) noteWrites(ctx context.Context, w http.ResponseWriter, userID string) (http.ResponseWriter, context.Context, func()) {
	tracked := a.app.TrackWrites(ctx)
	if tracked == ctx {
		return w, ctx, func() {}
	}
	nw := &noteWriter{ResponseWriter: w, note: func() { a.app.NoteWrites(tracked, userID) }}
	return nw, tracked, nw.fire
}

// noteWriter runs note once, before the first byte of the answer.
type noteWriter struct {
	http.ResponseWriter
	note  func()
	fired bool
}

func (w *noteWriter) fire() {
	if !w.fired {
		w.fired = true
		w.note()
	}
}

func (w *noteWriter) WriteHeader(code int) {
	w.fire()
	w.ResponseWriter.WriteHeader(code)
}

func (w *noteWriter) Write(b []byte) (int, error) {
	w.fire()
	return w.ResponseWriter.Write(b)
}

// Flush keeps streaming responses working.
func (w *noteWriter) Flush() {
	w.fire()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *noteWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
