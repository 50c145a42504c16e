package hub

import "github.com/lockerd/lockerd/sync/hub/auth"

// Auth is who may use the hub (sync/hub/auth): tokens and their scopes,
// the audit log, the console's users. The HTTP API, the console and the
// command line call it.
func (h *Hub) Auth() *auth.Service { return h.auth }
