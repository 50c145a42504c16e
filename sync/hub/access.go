package hub

import "github.com/lockerd/lockerd/sync/hub/auth"

// Who may use the hub (sync/hub/auth): the Hub's methods the HTTP API,
// the console and the command line call.

// CreateToken makes a token named name with scopes; it returns its
// secret, shown once: the hub keeps only its hash.
func (h *Hub) CreateToken(name string, scopes []string, by string) (string, auth.Token, error) {
	return h.auth.CreateToken(name, scopes, by)
}

// Authenticate finds the token a bearer secret stands for.
func (h *Hub) Authenticate(bearer string) (auth.Token, error) { return h.auth.Authenticate(bearer) }

// RevokeToken revokes a token by id or name: it is refused from now on.
func (h *Hub) RevokeToken(idOrName string) (auth.Token, error) {
	return h.auth.RevokeToken(idOrName)
}

// Tokens lists the tokens (their hashes left out).
func (h *Hub) Tokens() ([]auth.Token, error) { return h.auth.Tokens() }

// BootstrapToken makes the first admin token when the hub has none and
// writes it to file (0600, never over an existing file).
func (h *Hub) BootstrapToken(file string) (created bool, err error) {
	return h.auth.BootstrapToken(file)
}

// Audit records a state-changing action.
func (h *Hub) Audit(a auth.AuditRec) { h.auth.Audit(a) }

// AuditLog lists audit records after seq after (at most limit).
func (h *Hub) AuditLog(after uint64, limit int) ([]auth.AuditRec, error) {
	return h.auth.AuditLog(after, limit)
}

// AddUser makes (or replaces) a console user.
func (h *Hub) AddUser(name, role, password string) (auth.User, error) {
	return h.auth.AddUser(name, role, password)
}

// DisableUser disables a console user.
func (h *Hub) DisableUser(name string) error { return h.auth.DisableUser(name) }

// Users lists the console users (their hashes left out).
func (h *Hub) Users() ([]auth.User, error) { return h.auth.Users() }

// SignIn checks a user's password.
func (h *Hub) SignIn(name, password string) (auth.User, error) {
	return h.auth.SignIn(name, password)
}

// ActiveUser returns a user who may act now (known, not disabled).
func (h *Hub) ActiveUser(name string) (auth.User, bool) { return h.auth.ActiveUser(name) }
