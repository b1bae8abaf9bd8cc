package api

import (
	"net/http"
)

// clusterStatus lists the live nodes in Mattermost's ClusterInfo shape;
// a server on its own lists itself.
func (a *API) clusterStatus(w http.ResponseWriter, r *http.Request) error {
	nodes, appErr := a.app.ClusterStatus(r.Context(), sessionFrom(r))
	return reply(w, http.StatusOK, nodes, appErr)
}
