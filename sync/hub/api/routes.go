package api

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

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

type handleFunc func(pattern, scope string, fn http.HandlerFunc)

// Core is the fleet core the API calls: lockers, orders, commands, events.
type Core interface {
	Connected() bool
	Partitions() int
	Subscribed() bool
	Lockers() ([]hub.LockerInfo, error)
	AddLocker(id, source string) error
	Orders(lockerID string) ([]hub.OrderRec, error)
	CreateOrder(req hub.NewOrder) (hub.Created, error)
	CancelOrder(lockerID, orderID string) (rev uint64, err error)
	Snapshot(lockerID string, partSize int) (snapID string, parts int, err error)
	Open(lockerID, compartment, reason string) (cmdID string, err error)
	BadgeHash(code string) (string, error)
	Badges(lockerID string, ch protocol.CmdBadges) (cmdID string, err error)
	Command(id string) (hub.CmdRec, error)
	Events(lockerID string, after hub.Cursor, limit int) ([]hub.StoredEvent, error)
}

func (s *server) coreRoutes(handle handleFunc) {
	c := s.cfg.Core
	handle("GET /v1/lockers", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		ls, err := c.Lockers()
		reply(w, page(ls, limitOf(r), func(l hub.LockerInfo) bool { return l.ID > r.URL.Query().Get("after") }), err)
	})
	handle("POST /v1/lockers", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req struct{ ID string }
		if !read(w, r, &req) {
			return
		}
		reply(w, map[string]string{"id": req.ID}, c.AddLocker(req.ID, "api"))
	})
	handle("GET /v1/orders", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		os, err := c.Orders(r.URL.Query().Get("locker"))
		after := afterSeq(r)
		reply(w, page(os, limitOf(r), func(o hub.OrderRec) bool { return o.Rev > after }), err)
	})
	handle("POST /v1/orders", auth.ScopeOrders, func(w http.ResponseWriter, r *http.Request) {
		var req hub.NewOrder
		if !read(w, r, &req) {
			return
		}
		created, err := c.CreateOrder(req)
		w.Header().Set("Cache-Control", "no-store")
		reply(w, created, err)
	})
	handle("POST /v1/cancel", auth.ScopeOrders, func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Locker, OrderID string }
		if !read(w, r, &req) {
			return
		}
		rev, err := c.CancelOrder(req.Locker, req.OrderID)
		reply(w, map[string]any{"rev": rev}, err)
	})
	handle("POST /v1/snapshot", auth.ScopeOrders, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Locker   string
			PartSize int
		}
		if !read(w, r, &req) {
			return
		}
		id, parts, err := c.Snapshot(req.Locker, req.PartSize)
		reply(w, map[string]any{"snap_id": id, "parts": parts}, err)
	})
	handle("POST /v1/open", auth.ScopeOpen, func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Locker, Compartment, Reason string }
		if !read(w, r, &req) {
			return
		}
		if !s.opens.Allow(Caller(r.Context()).ID, time.Now()) {
			deny(w, http.StatusTooManyRequests, fmt.Sprintf("too many remote opens for this token: at most %d at once, then one every %v", openBurst, openEvery))
			return
		}
		id, err := c.Open(req.Locker, req.Compartment, req.Reason)
		reply(w, map[string]any{"cmd_id": id}, err)
	})
	handle("POST /v1/badges", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Locker string
			// Add may give a badge's Code instead of its Hash: it is
			// hashed here and never stored.
			Add    []struct{ Name, Role, Hash, Code string }
			Revoke []protocol.BadgeRef
		}
		if !read(w, r, &req) {
			return
		}
		ch := protocol.CmdBadges{Revoke: req.Revoke}
		for _, b := range req.Add {
			if b.Code != "" {
				hash, err := c.BadgeHash(b.Code)
				if err != nil {
					reply(w, nil, err)
					return
				}
				b.Hash = hash
			}
			ch.Add = append(ch.Add, protocol.BadgeSpec{Name: b.Name, Hash: b.Hash, Role: b.Role})
		}
		id, err := c.Badges(req.Locker, ch)
		reply(w, map[string]any{"cmd_id": id}, err)
	})
	handle("GET /v1/commands/{id}", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		rec, err := c.Command(r.PathValue("id"))
		reply(w, rec, err)
	})
	handle("GET /v1/events", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		after, err := hub.ParseCursor(r.URL.Query().Get("after"))
		if err != nil {
			reply(w, nil, err)
			return
		}
		evs, err := c.Events(r.URL.Query().Get("locker"), after, limitOf(r))
		reply(w, evs, err)
	})
}

// Alarms are the alarms the API lists, acknowledges and resolves.
type Alarms interface {
	Alarms(after uint64) ([]alarm.Alarm, error)
	OpenAlarms() ([]alarm.Alarm, error)
	AckAlarm(seq uint64, by string) (alarm.Alarm, error)
	ResolveAlarm(seq uint64, by, note string) (alarm.Alarm, error)
}

func (s *server) alarmRoutes(handle handleFunc) {
	a := s.cfg.Alarms
	handle("GET /v1/alarms", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		after := afterSeq(r)
		var as []alarm.Alarm
		var err error
		switch r.URL.Query().Get("state") {
		case "":
			as, err = a.Alarms(after)
		case "open":
			as, err = a.OpenAlarms()
		default:
			err = errors.New("state: open, or none for every alarm")
		}
		reply(w, page(as, limitOf(r), func(a alarm.Alarm) bool { return a.Seq > after }), err)
	})
	handle("POST /v1/alarms/{seq}/ack", auth.ScopeOrders, func(w http.ResponseWriter, r *http.Request) {
		seq, err := pathID(r, "seq", "alarm")
		if err != nil {
			reply(w, nil, err)
			return
		}
		al, err := a.AckAlarm(seq, Caller(r.Context()).Name)
		reply(w, al, err)
	})
	handle("POST /v1/alarms/{seq}/resolve", auth.ScopeOrders, func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Note string }
		if !read(w, r, &req) {
			return
		}
		seq, err := pathID(r, "seq", "alarm")
		if err != nil {
			reply(w, nil, err)
			return
		}
		al, err := a.ResolveAlarm(seq, Caller(r.Context()).Name, req.Note)
		reply(w, al, err)
	})
}

// Circulation is the SIP2 bridge's queue as the API shows and works it.
type Circulation interface {
	Circulation(f circulation.CircFilter) ([]circulation.CircRec, error)
	ILSStatus() (circulation.ILSStatus, error)
	RetryCirc(id uint64) (circulation.CircRec, error)
	ResolveCirc(id uint64, note string) (circulation.CircRec, error)
}

func (s *server) circulationRoutes(handle handleFunc) {
	c := s.cfg.Circulation
	handle("GET /v1/circulation", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		cs, err := c.Circulation(circulation.CircFilter{Locker: q.Get("locker"), State: q.Get("state"), After: afterSeq(r), Limit: limitOf(r)})
		reply(w, cs, err)
	})
	handle("GET /v1/circulation/status", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		st, err := c.ILSStatus()
		reply(w, st, err)
	})
	handle("POST /v1/circulation/{id}/retry", auth.ScopeOrders, func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "id", "transaction id")
		if err != nil {
			reply(w, nil, err)
			return
		}
		rec, err := c.RetryCirc(id)
		reply(w, rec, err)
	})
	handle("POST /v1/circulation/{id}/resolve", auth.ScopeOrders, func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Note string }
		if !read(w, r, &req) {
			return
		}
		id, err := pathID(r, "id", "transaction id")
		if err != nil {
			reply(w, nil, err)
			return
		}
		rec, err := c.ResolveCirc(id, req.Note)
		reply(w, rec, err)
	})
}

// Fleet is the fleet's work the API calls (*fleet.Service).
type Fleet interface {
	ArtifactPath(version, arch string) (string, error)
	Provision(req protocol.ProvisionRequest, from string, now time.Time) (protocol.ProvisionReply, error)
	CreateProvisionToken(req fleet.NewProvisionToken, by string) (fleet.ProvisionTokenCreated, error)
	ProvisionTokens() ([]fleet.ProvisionToken, error)
	RevokeLocker(id, by, reason string, now time.Time) (fleet.Credential, error)
	PushConfig(lockerID string, raw []byte, by, note string) (fleet.ConfigVersion, error)
	RollbackConfig(lockerID string, to uint64, by string) (fleet.ConfigVersion, error)
	ConfigHistory(lockerID string) ([]fleet.ConfigVersion, error)
	AddArtifact(version, arch string, r io.Reader, rollback bool, by string) (protocol.Manifest, error)
	AddSignedArtifact(version, arch string, r io.Reader, manifest []byte, by string) (protocol.Manifest, error)
	Releases() ([]fleet.Release, error)
	StartRollout(req fleet.NewRollout, by string) (fleet.Rollout, error)
	Rollouts() ([]fleet.Rollout, error)
}

var _ Fleet = (*fleet.Service)(nil)

func (s *server) fleetRoutes(mux *http.ServeMux, handle handleFunc) {
	f := s.cfg.Fleet
	// Lockers fetch a release's binary without a token: its manifest,
	// signed, says what it must be; ranges let a download resume.
	mux.HandleFunc("GET /v1/releases/{version}/{arch}/binary", func(w http.ResponseWriter, r *http.Request) {
		p, err := f.ArtifactPath(r.PathValue("version"), r.PathValue("arch"))
		if err != nil {
			deny(w, http.StatusNotFound, err.Error())
			return
		}
		file, err := os.Open(p)
		if err != nil {
			deny(w, http.StatusNotFound, "no such release")
			return
		}
		defer file.Close()
		st, err := file.Stat()
		if err != nil {
			deny(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "lockerd", st.ModTime(), file)
	})
	// A blank cabinet has no API token: its provisioning token, in the
	// body, is its credential (checked, used up and audited by Provision).
	mux.HandleFunc("POST /v1/provision", func(w http.ResponseWriter, r *http.Request) {
		from := s.clientAddr(r)
		if !s.provisions.Allow(from, time.Now()) {
			deny(w, http.StatusTooManyRequests, "too many provisioning attempts from this address: wait a minute")
			return
		}
		var req protocol.ProvisionRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
			deny(w, http.StatusBadRequest, "want {locker, token, public_key}")
			return
		}
		rep, err := f.Provision(req, from, time.Now())
		var pe *fleet.ProvisionError
		if errors.As(err, &pe) {
			deny(w, pe.Status, pe.Msg)
			return
		}
		reply(w, rep, err)
	})
	handle("POST /v1/config", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Locker, Config string
			Rollback       bool   // push an earlier version again
			To             uint64 // with Rollback: that version (0: the one applied before the last)
		}
		if !read(w, r, &req) {
			return
		}
		var v fleet.ConfigVersion
		var err error
		if req.Rollback {
			v, err = f.RollbackConfig(req.Locker, req.To, Caller(r.Context()).Name)
		} else {
			v, err = f.PushConfig(req.Locker, []byte(req.Config), Caller(r.Context()).Name, "")
		}
		reply(w, v, err)
	})
	handle("GET /v1/config", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		hist, err := f.ConfigHistory(r.URL.Query().Get("locker"))
		reply(w, hist, err)
	})
	handle("PUT /v1/releases/{version}/{arch}", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		body := http.MaxBytesReader(w, r.Body, fleet.MaxBinary+1)
		var m protocol.Manifest
		var err error
		if signed := r.Header.Get(fleet.ManifestHeader); signed != "" {
			// Signed with the release key, where it is kept.
			raw, derr := base64.StdEncoding.DecodeString(signed)
			if derr != nil || len(raw) > fleet.MaxManifest {
				reply(w, nil, fmt.Errorf("%s: want a base64 signed manifest of at most %d bytes", fleet.ManifestHeader, fleet.MaxManifest))
				return
			}
			m, err = f.AddSignedArtifact(r.PathValue("version"), r.PathValue("arch"), body, raw, Caller(r.Context()).Name)
		} else {
			m, err = f.AddArtifact(r.PathValue("version"), r.PathValue("arch"), body, r.URL.Query().Get("rollback") == "1", Caller(r.Context()).Name)
		}
		reply(w, m, err)
	})
	handle("GET /v1/releases", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		rels, err := f.Releases()
		reply(w, rels, err)
	})
	handle("POST /v1/rollouts", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req fleet.NewRollout
		if !read(w, r, &req) {
			return
		}
		ro, err := f.StartRollout(req, Caller(r.Context()).Name)
		reply(w, ro, err)
	})
	handle("GET /v1/rollouts", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		ros, err := f.Rollouts()
		reply(w, ros, err)
	})
	handle("POST /v1/provision/tokens", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req fleet.NewProvisionToken
		if !read(w, r, &req) {
			return
		}
		created, err := f.CreateProvisionToken(req, Caller(r.Context()).Name)
		reply(w, created, err)
	})
	handle("POST /v1/provision/revoke", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Locker, Reason string }
		if !read(w, r, &req) {
			return
		}
		c, err := f.RevokeLocker(req.Locker, Caller(r.Context()).Name, req.Reason, time.Now())
		c.Hash = ""
		reply(w, c, err)
	})
	handle("GET /v1/provision/tokens", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		toks, err := f.ProvisionTokens()
		reply(w, toks, err)
	})
}

// Auth is who may use the hub: tokens, the audit log, console users.
type Auth interface {
	Authenticate(bearer string) (auth.Token, error)
	Audit(a auth.AuditRec)
	AuditLog(after uint64, limit int) ([]auth.AuditRec, error)
	Tokens() ([]auth.Token, error)
	CreateToken(name string, scopes []string, by string) (string, auth.Token, error)
	RevokeToken(idOrName string) (auth.Token, error)
	Users() ([]auth.User, error)
	AddUser(name, role, password string) (auth.User, error)
	DisableUser(name string) error
}

func (s *server) authRoutes(handle handleFunc) {
	a := s.cfg.Auth
	handle("GET /v1/tokens", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		ts, err := a.Tokens()
		reply(w, ts, err)
	})
	handle("POST /v1/tokens", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name   string   `json:"name"`
			Scopes []string `json:"scopes"`
		}
		if !read(w, r, &req) {
			return
		}
		secret, tok, err := a.CreateToken(req.Name, req.Scopes, Caller(r.Context()).Name)
		tok.Hash = ""
		w.Header().Set("Cache-Control", "no-store")
		reply(w, map[string]any{"token": secret, "record": tok}, err)
	})
	handle("POST /v1/tokens/{id}/revoke", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		tok, err := a.RevokeToken(r.PathValue("id"))
		tok.Hash = ""
		reply(w, tok, err)
	})
	handle("GET /v1/users", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		us, err := a.Users()
		reply(w, us, err)
	})
	handle("POST /v1/users", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Name, Role, Password string }
		if !read(w, r, &req) {
			return
		}
		r.Body = http.NoBody
		u, err := a.AddUser(req.Name, req.Role, req.Password)
		reply(w, u, err)
	})
	handle("POST /v1/users/{name}/disable", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]string{"disabled": r.PathValue("name")}, a.DisableUser(r.PathValue("name")))
	})
	handle("GET /v1/audit", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		as, err := a.AuditLog(afterSeq(r), limitOf(r))
		if as == nil {
			as = []auth.AuditRec{}
		}
		reply(w, as, err)
	})
}

// Webhooks are the subscriptions and their failed deliveries.
type Webhooks interface {
	Webhooks() ([]webhook.Webhook, error)
	AddWebhook(n webhook.NewWebhook) (webhook.Webhook, error)
	RemoveWebhook(id string) error
	FailedDeliveries() ([]webhook.Delivery, error)
	Redeliver(id uint64) (webhook.Delivery, error)
}

func (s *server) webhookRoutes(handle handleFunc) {
	wh := s.cfg.Webhooks
	handle("GET /v1/webhooks", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		ws, err := wh.Webhooks()
		reply(w, ws, err)
	})
	handle("POST /v1/webhooks", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req webhook.NewWebhook
		if !read(w, r, &req) {
			return
		}
		added, err := wh.AddWebhook(req)
		reply(w, added, err)
	})
	handle("POST /v1/webhooks/{id}/remove", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]string{"removed": r.PathValue("id")}, wh.RemoveWebhook(r.PathValue("id")))
	})
	handle("GET /v1/webhooks/failed", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		ds, err := wh.FailedDeliveries()
		reply(w, ds, err)
	})
	handle("POST /v1/webhooks/deliveries/{id}/redeliver", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "id", "delivery id")
		if err != nil {
			reply(w, nil, err)
			return
		}
		d, err := wh.Redeliver(id)
		reply(w, d, err)
	})
}

// Notices are what readers were told (sync/hub/notice), listed without
// their sealed codes.
type Notices interface {
	List(order string, after uint64, limit int) ([]notice.Notice, error)
}

func (s *server) noticeRoutes(handle handleFunc) {
	handle("GET /v1/notices", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		order := r.URL.Query().Get("order")
		if len(order) > 64 {
			reply(w, nil, errors.New("order: up to 64 characters"))
			return
		}
		ns, err := s.cfg.Notices.List(order, afterSeq(r), limitOf(r))
		reply(w, ns, err)
	})
}

// Stock is the library's stock for this service (sync/hub/stock).
type Stock interface {
	Import(name string, r io.Reader, now time.Time) (int, error)
	Search(query string, limit int) ([]stock.Item, error)
}

func (s *server) stockRoutes(handle handleFunc) {
	// The whole list as the request's body (CSV, up to stock.MaxFile):
	// it replaces the stock, or — a row broken — changes nothing and
	// says FILE:LINE: field: what for each.
	handle("PUT /v1/stock", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		name := cmp.Or(r.URL.Query().Get("name"), "stock.csv")
		if len(name) > 100 {
			name = name[:100]
		}
		n, err := s.cfg.Stock.Import(name, http.MaxBytesReader(w, r.Body, stock.MaxFile), time.Now())
		reply(w, map[string]int{"imported": n}, err)
	})
	handle("GET /v1/stock", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		items, err := s.cfg.Stock.Search(r.URL.Query().Get("q"), limitOf(r))
		reply(w, items, err)
	})
}
