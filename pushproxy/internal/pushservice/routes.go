package pushservice

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// routes lists every route of the push service. The proxy mounts the
// result at the root of its listener, beside its own routes.
func (s *Service) routes() http.Handler {
	r := chi.NewRouter()
	// Application server → push service (RFC 8030, UnifiedPush).
	r.Post("/push/{cap}", s.handle(s.postPush))
	r.Get("/push/{cap}", s.handle(s.getPush))
	r.Delete("/m/{id}", s.handle(s.deleteMessage))
	// Device → push service (Firefox's push WebSocket).
	r.Get("/ws", s.handle(s.serveWS))
	return r
}
