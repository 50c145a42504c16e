package hubclient

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/lockerd/lockerd/locker/jsonhttp"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/fleet"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/hub/stock"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/protocol"
)

// Client talks to a running hub's HTTP API (Handler): lockerhub's commands
// and tests use it.
type Client struct {
	Addr  string // host:port
	Token string // the bearer token every /v1/ call needs
	HTTP  *http.Client
	// Scheme is "http" (default) or "https".
	Scheme string
}

// New returns a client for the hub at addr.
func New(addr string) *Client {
	return &Client{Addr: addr, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Do sends body (if any) as JSON and decodes the reply into into (if any).
// A non-2xx reply is an error carrying the hub's message.
func (c *Client) Do(method, path string, body, into any) error {
	return c.DoWith(method, path, nil, body, into)
}

// DoWith is Do with headers of the request's own.
func (c *Client) DoWith(method, path string, hdr http.Header, body, into any) error {
	hdr = hdr.Clone()
	if c.Token != "" {
		if hdr == nil {
			hdr = http.Header{}
		}
		hdr.Set("Authorization", "Bearer "+c.Token)
	}
	scheme := c.Scheme
	if scheme == "" {
		scheme = "http"
	}
	return jsonhttp.Do(c.HTTP, "hub at "+c.Addr, method, scheme+"://"+c.Addr+path, hdr, body, into)
}

// CreateToken makes an API token; its secret comes back once.
func (c *Client) CreateToken(name string, scopes []string) (string, auth.Token, error) {
	var r struct {
		Token  string     `json:"token"`
		Record auth.Token `json:"record"`
	}
	err := c.Do("POST", "/v1/tokens", map[string]any{"name": name, "scopes": scopes}, &r)
	return r.Token, r.Record, err
}

// Tokens lists the API tokens.
func (c *Client) Tokens() ([]auth.Token, error) {
	var ts []auth.Token
	return ts, c.Do("GET", "/v1/tokens", nil, &ts)
}

// RevokeToken revokes a token by id or name.
func (c *Client) RevokeToken(idOrName string) (auth.Token, error) {
	var t auth.Token
	return t, c.Do("POST", "/v1/tokens/"+url.PathEscape(idOrName)+"/revoke", nil, &t)
}

// AuditLog reads the audit log, page by page.
func (c *Client) AuditLog() ([]auth.AuditRec, error) {
	return pages(c, "/v1/audit?", func(a auth.AuditRec) string { return fmt.Sprint(a.Seq) })
}

// CreateOrder creates an order; the reply holds its pickup code.
func (c *Client) CreateOrder(req hub.NewOrder) (hub.Created, error) {
	var cr hub.Created
	return cr, c.Do("POST", "/v1/orders", req, &cr)
}

// AddLocker makes the hub serve locker id.
func (c *Client) AddLocker(id string) error {
	return c.Do("POST", "/v1/lockers", map[string]string{"ID": id}, nil)
}

// CancelOrder cancels an order; it returns the cancel's rev.
func (c *Client) CancelOrder(lockerID, orderID string) (uint64, error) {
	var r struct{ Rev uint64 }
	return r.Rev, c.Do("POST", "/v1/cancel", map[string]string{"Locker": lockerID, "OrderID": orderID}, &r)
}

// Snapshot sends a locker its complete order set.
func (c *Client) Snapshot(lockerID string, partSize int) (snapID string, parts int, err error) {
	var r struct {
		SnapID string `json:"snap_id"`
		Parts  int    `json:"parts"`
	}
	err = c.Do("POST", "/v1/snapshot", map[string]any{"Locker": lockerID, "PartSize": partSize}, &r)
	return r.SnapID, r.Parts, err
}

// Open sends a signed cmd.open; it returns the command's id.
func (c *Client) Open(lockerID, compartment, reason string) (string, error) {
	var r struct {
		CmdID string `json:"cmd_id"`
	}
	return r.CmdID, c.Do("POST", "/v1/open", map[string]string{"Locker": lockerID, "Compartment": compartment, "Reason": reason}, &r)
}

// BadgeChange is a change of a locker's badges for Client.Badges: Add
// gives each badge's code (hashed by the hub, never stored) or hash.
type BadgeChange struct {
	Locker string
	Add    []BadgeAdd
	Revoke []protocol.BadgeRef
}

// BadgeAdd is one badge to add.
type BadgeAdd struct{ Name, Role, Hash, Code string }

// Badges sends cmd.badges and returns the command's id.
func (c *Client) Badges(ch BadgeChange) (string, error) {
	var r struct {
		CmdID string `json:"cmd_id"`
	}
	return r.CmdID, c.Do("POST", "/v1/badges", ch, &r)
}

// AddArtifact uploads one architecture's binary of a release.
func (c *Client) AddArtifact(version, arch string, binary io.Reader, rollback bool) (protocol.Manifest, error) {
	var m protocol.Manifest
	q := ""
	if rollback {
		q = "?rollback=1"
	}
	return m, c.Do("PUT", "/v1/releases/"+url.PathEscape(version)+"/"+url.PathEscape(arch)+q, binary, &m)
}

// AddSignedArtifact uploads one architecture's binary of a release with
// the manifest signed for it with the release key.
func (c *Client) AddSignedArtifact(version, arch string, binary io.Reader, manifest []byte) (protocol.Manifest, error) {
	var m protocol.Manifest
	hdr := http.Header{fleet.ManifestHeader: {base64.StdEncoding.EncodeToString(manifest)}}
	return m, c.DoWith("PUT", "/v1/releases/"+url.PathEscape(version)+"/"+url.PathEscape(arch), hdr, binary, &m)
}

// Releases lists the releases.
func (c *Client) Releases() ([]fleet.Release, error) {
	var out []fleet.Release
	return out, c.Do("GET", "/v1/releases", nil, &out)
}

// StartRollout starts rolling a release out.
func (c *Client) StartRollout(req fleet.NewRollout) (fleet.Rollout, error) {
	var ro fleet.Rollout
	return ro, c.Do("POST", "/v1/rollouts", req, &ro)
}

// Rollouts lists the rollouts.
func (c *Client) Rollouts() ([]fleet.Rollout, error) {
	var out []fleet.Rollout
	return out, c.Do("GET", "/v1/rollouts", nil, &out)
}

// PushConfig sends a configuration to a locker (validated at the hub).
func (c *Client) PushConfig(lockerID string, raw []byte) (fleet.ConfigVersion, error) {
	var v fleet.ConfigVersion
	return v, c.Do("POST", "/v1/config", map[string]any{"Locker": lockerID, "Config": string(raw)}, &v)
}

// RollbackConfig pushes an earlier configuration again (to 0: the one
// applied before the last).
func (c *Client) RollbackConfig(lockerID string, to uint64) (fleet.ConfigVersion, error) {
	var v fleet.ConfigVersion
	return v, c.Do("POST", "/v1/config", map[string]any{"Locker": lockerID, "Rollback": true, "To": to}, &v)
}

// ConfigHistory lists a locker's configuration versions.
func (c *Client) ConfigHistory(lockerID string) ([]fleet.ConfigVersion, error) {
	var out []fleet.ConfigVersion
	return out, c.Do("GET", "/v1/config?locker="+url.QueryEscape(lockerID), nil, &out)
}

// CreateProvisionToken makes a one-time provisioning token.
func (c *Client) CreateProvisionToken(req fleet.NewProvisionToken) (fleet.ProvisionTokenCreated, error) {
	var out fleet.ProvisionTokenCreated
	return out, c.Do("POST", "/v1/provision/tokens", req, &out)
}

// RevokeLocker revokes a provisioned locker's broker credentials.
func (c *Client) RevokeLocker(id, reason string) (fleet.Credential, error) {
	var out fleet.Credential
	return out, c.Do("POST", "/v1/provision/revoke", map[string]string{"Locker": id, "Reason": reason}, &out)
}

// ProvisionTokens lists the provisioning tokens.
func (c *Client) ProvisionTokens() ([]fleet.ProvisionToken, error) {
	var out []fleet.ProvisionToken
	return out, c.Do("GET", "/v1/provision/tokens", nil, &out)
}

// Command reads a command's record (its answer, once the locker sent it).
func (c *Client) Command(id string) (hub.CmdRec, error) {
	var rec hub.CmdRec
	return rec, c.Do("GET", "/v1/commands/"+url.PathEscape(id), nil, &rec)
}

// Events reads a locker's events after the cursor (one page).
func (c *Client) Events(lockerID string, after hub.Cursor) ([]hub.StoredEvent, error) {
	var evs []hub.StoredEvent
	return evs, c.Do("GET", fmt.Sprintf("/v1/events?locker=%s&after=%s", url.QueryEscape(lockerID), after), nil, &evs)
}

// Lockers reads every locker, page by page.
func (c *Client) Lockers() ([]hub.LockerInfo, error) {
	return pages(c, "/v1/lockers?", func(l hub.LockerInfo) string { return l.ID })
}

// Orders reads a locker's orders, page by page.
func (c *Client) Orders(lockerID string) ([]hub.OrderRec, error) {
	return pages(c, "/v1/orders?locker="+url.QueryEscape(lockerID)+"&", func(o hub.OrderRec) string { return fmt.Sprint(o.Rev) })
}

// Alarms reads every alarm (open: the unresolved ones), page by page.
func (c *Client) Alarms(open bool) ([]alarm.Alarm, error) {
	path := "/v1/alarms?"
	if open {
		path += "state=open&"
	}
	return pages(c, path, func(a alarm.Alarm) string { return fmt.Sprint(a.Seq) })
}

// AckAlarm acknowledges an alarm.
func (c *Client) AckAlarm(seq uint64) (alarm.Alarm, error) {
	var a alarm.Alarm
	return a, c.Do("POST", fmt.Sprintf("/v1/alarms/%d/ack", seq), nil, &a)
}

// ResolveAlarm resolves an alarm with a note.
func (c *Client) ResolveAlarm(seq uint64, note string) (alarm.Alarm, error) {
	var a alarm.Alarm
	return a, c.Do("POST", fmt.Sprintf("/v1/alarms/%d/resolve", seq), map[string]string{"Note": note}, &a)
}

// Circulation reads the circulation.ILS transactions that f selects, page by page.
func (c *Client) Circulation(f circulation.CircFilter) ([]circulation.CircRec, error) {
	q := url.Values{}
	if f.Locker != "" {
		q.Set("locker", f.Locker)
	}
	if f.State != "" {
		q.Set("state", f.State)
	}
	return pages(c, "/v1/circulation?"+q.Encode()+"&", func(r circulation.CircRec) string { return fmt.Sprint(r.ID) })
}

// circulation.ILSStatus says whether the circulation bridge can send now, and if not
// why.
func (c *Client) ILSStatus() (circulation.ILSStatus, error) {
	var st circulation.ILSStatus
	return st, c.Do("GET", "/v1/circulation/status", nil, &st)
}

// RetryCirc queues a refused transaction or an exception again.
func (c *Client) RetryCirc(id uint64) (circulation.CircRec, error) {
	var r circulation.CircRec
	return r, c.Do("POST", fmt.Sprintf("/v1/circulation/%d/retry", id), nil, &r)
}

// ResolveCirc closes a refused transaction or an exception with a note.
func (c *Client) ResolveCirc(id uint64, note string) (circulation.CircRec, error) {
	var r circulation.CircRec
	return r, c.Do("POST", fmt.Sprintf("/v1/circulation/%d/resolve", id), map[string]string{"Note": note}, &r)
}

// AddWebhook subscribes a URL to event types.
func (c *Client) AddWebhook(n webhook.NewWebhook) (webhook.Webhook, error) {
	var w webhook.Webhook
	return w, c.Do("POST", "/v1/webhooks", n, &w)
}

// Webhooks lists the subscriptions.
func (c *Client) Webhooks() ([]webhook.Webhook, error) {
	var ws []webhook.Webhook
	return ws, c.Do("GET", "/v1/webhooks", nil, &ws)
}

// RemoveWebhook ends a subscription.
func (c *Client) RemoveWebhook(id string) error {
	return c.Do("POST", "/v1/webhooks/"+url.PathEscape(id)+"/remove", nil, nil)
}

// FailedDeliveries lists the dead deliveries.
func (c *Client) FailedDeliveries() ([]webhook.Delivery, error) {
	var ds []webhook.Delivery
	return ds, c.Do("GET", "/v1/webhooks/failed", nil, &ds)
}

// Notices lists what readers were told (of one order, or all after id
// after).
func (c *Client) Notices(order string, after uint64) ([]notice.Notice, error) {
	var ns []notice.Notice
	q := url.Values{}
	if order != "" {
		q.Set("order", order)
	}
	if after > 0 {
		q.Set("after", strconv.FormatUint(after, 10))
	}
	return ns, c.Do("GET", "/v1/notices?"+q.Encode(), nil, &ns)
}

// ImportStock replaces the stock with the list in r (CSV; name is the
// file's, for the messages).
func (c *Client) ImportStock(name string, r io.Reader) (int, error) {
	var out struct{ Imported int }
	err := c.DoWith("PUT", "/v1/stock?name="+url.QueryEscape(name), http.Header{"Content-Type": {"text/csv"}}, r, &out)
	return out.Imported, err
}

// SearchStock lists the books of the stock that answer query.
func (c *Client) SearchStock(query string) ([]stock.Item, error) {
	var items []stock.Item
	return items, c.Do("GET", "/v1/stock?q="+url.QueryEscape(query), nil, &items)
}

// Redeliver queues a dead delivery again.
func (c *Client) Redeliver(id uint64) (webhook.Delivery, error) {
	var d webhook.Delivery
	return d, c.Do("POST", fmt.Sprintf("/v1/webhooks/deliveries/%d/redeliver", id), nil, &d)
}

// AddUser makes a console user.
func (c *Client) AddUser(name, role, password string) (auth.User, error) {
	var u auth.User
	return u, c.Do("POST", "/v1/users", map[string]string{"Name": name, "Role": role, "Password": password}, &u)
}

// Users lists the console users.
func (c *Client) Users() ([]auth.User, error) {
	var us []auth.User
	return us, c.Do("GET", "/v1/users", nil, &us)
}

// DisableUser keeps a user from signing in.
func (c *Client) DisableUser(name string) error {
	return c.Do("POST", "/v1/users/"+url.PathEscape(name)+"/disable", nil, nil)
}

// pages reads a paged list: path (ending in ? or &) with after= the key
// of the last entry, until a page comes back empty.
func pages[T any](c *Client, path string, key func(T) string) ([]T, error) {
	var all []T
	after := ""
	for {
		var page []T
		if err := c.Do("GET", path+"after="+url.QueryEscape(after), nil, &page); err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return all, nil
		}
		all = append(all, page...)
		after = key(page[len(page)-1])
	}
}
