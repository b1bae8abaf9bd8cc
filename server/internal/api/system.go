package api

import (
	"net/http"
	"os"

	"github.com/klauspost/compress/gzhttp"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// gzipMiddleware compresses responses that are worth it (klauspost's
// gzhttp: the same as Mattermost's WebserverMode "gzip", and several times
// faster than compress/gzip).
func gzipMiddleware(next http.Handler) http.Handler {
	wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(1024), gzhttp.CompressionLevel(1))
	if err != nil {
		panic(err) // static options; cannot fail
	}
	return wrap(next)
}

// ping answers GET /system/ping. With get_server_status=true it checks the
// database (a write, as Mattermost does) and the file store; a failing
// check makes the reply 500 unless use_rest_semantics=true. System admins
// also see root_status and database_replicas (name, lag_ms, in_rotation).
func (a *API) ping(w http.ResponseWriter, r *http.Request) error {
	resp := map[string]any{
		"status": "OK", "AndroidLatestVersion": "", "AndroidMinVersion": "",
		"IosLatestVersion": "", "IosMinVersion": "", "ActiveSearchBackend": "database",
	}
	healthy := true
	if boolQuery(r, "get_server_status") {
		db := "OK"
		if err := a.app.Ping(r.Context()); err != nil {
			db = "UNHEALTHY"
			healthy = false
			a.log.Warn("health check: database", "err", err, "request_id", requestID(r))
		}
		fs := "OK"
		if err := a.app.FileStoreCheck(r.Context()); err != nil {
			fs = "UNHEALTHY"
			healthy = false
			a.log.Warn("health check: file store", "err", err, "request_id", requestID(r))
		}
		resp["database_status"] = db
		resp["filestore_status"] = fs
		w.Header().Set("database_status", db)
		w.Header().Set("filestore_status", fs)
		// A health probe answers whatever the token: a bad one only
		// withholds the admin-only field.
		if s, err := a.optionalSession(r); err == nil && s != nil && s.IsSystemAdmin() {
			resp["root_status"] = os.Geteuid() == 0
			// Database (issue 4): which replicas serve reads, and their lag.
			resp["database_replicas"] = a.app.DatabaseReplicas()
		}
	}
	status := http.StatusOK
	if !healthy {
		resp["status"] = "UNHEALTHY"
		if !boolQuery(r, "use_rest_semantics") {
			status = http.StatusInternalServerError
		}
	}
	w.Header().Set("status", resp["status"].(string))
	return writeJSON(w, status, resp)
}

// clientConfig answers GET /config/client?format=old: the settings
// clients read before and after login.
func (a *API) clientConfig(w http.ResponseWriter, r *http.Request) error {
	// format=old is the only format Mattermost serves to clients; newer
	// servers answer the same map without it.
	return ok(w, a.o.ClientConfig)
}

// clientLicense answers GET /license/client?format=old. Garrison is not a
// licensed Mattermost, so clients see an unlicensed server and enable no
// enterprise-only UI.
func (a *API) clientLicense(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Query().Get("format") != "old" {
		return model.NewAppError("api.client_license", "api.license.client.old_format.app_error", http.StatusBadRequest,
			"New format for the client license is not supported yet. Please specify format=old in the query string.")
	}
	return ok(w, map[string]string{"IsLicensed": "false"})
}
