package fleet

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/protocol"
)

// Tx is the part of a store transaction the fleet needs: its documents,
// the hub's registry of the lockers it serves (a provisioned cabinet is
// served from then on), and the alarm and webhook parts its alarms go to.
type Tx struct {
	Docs    Docs
	Lockers Registry
	Alarms  alarm.Tx
	Hooks   webhook.Tx
}

// Docs are the fleet's records as JSON documents by kind (DocKinds) and
// id. Docs lists a kind's, by id.
type Docs interface {
	PutDoc(kind, id string, doc any) error
	Doc(kind, id string, into any) (found bool, err error)
	Docs(kind string) ([]json.RawMessage, error)
}

// Registry is the hub's list of the lockers it serves, in a transaction.
type Registry interface {
	// Serve makes the hub serve locker id (nothing if it does already);
	// source says why ("provision").
	Serve(id, source string, at time.Time) error
}

// Store runs transactions over the fleet's part of a store.
type Store interface {
	View(fn func(Tx) error) error
	Update(fn func(Tx) error) error
}

// Lockers is what the fleet asks of the hub's core outside a transaction.
type Lockers interface {
	// RequireServed refuses a locker the hub does not serve, or whose
	// credentials were revoked.
	RequireServed(id string) error
	// Served lists the ids of the lockers the hub serves.
	Served() ([]string, error)
	// Command signs and sends a remote command to a locker and records
	// it; it returns the command's id.
	Command(lockerID, typ string, body any) (cmdID string, err error)
}

// Config is a Service's: what lockerhub's configuration gives, and what
// the hub wires in.
type Config struct {
	Store   Store
	Lockers Lockers
	// Prefix and Brokers are the hub's topic prefix and broker addresses
	// (a provisioned cabinet's, unless Provisioning.BrokerURLs says).
	Prefix  string
	Brokers []string
	// SigningKey is the central's key (manifests, the key a cabinet is
	// given); ReleaseKey, when set, the key releases are signed with
	// elsewhere; PickupKey the pickup-code key a cabinet is given.
	SigningKey   ed25519.PrivateKey
	ReleaseKey   ed25519.PublicKey
	PickupKey    locker.CodeKey
	Provisioning Provisioning
	// ReleasesDir keeps the releases' binaries ("": no releases).
	ReleasesDir string
	// Raise raises an alarm in a transaction and tells the webhooks of a
	// new one (the hub's rule for every alarm); Audit records what a
	// caller without a token did (provisioning).
	Raise func(alarms alarm.Tx, hooks webhook.Tx, a alarm.Alarm) error
	Audit func(auth.AuditRec)
	Log   *slog.Logger
}

// Service is the fleet of one hub replica: provisioning, broker
// credentials and their revocation, configurations, releases, rollouts.
type Service struct {
	cfg Config
	log *slog.Logger
	// crlWritten: when the revocation list was last written (UnixNano;
	// rewritten daily); certsSwept: when the leader last looked for
	// broker certificates near their end (hourly).
	crlWritten atomic.Int64
	certsSwept atomic.Int64
}

// New makes a Service.
func New(cfg Config) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Service{cfg: cfg, log: cfg.Log.With("component", "fleet")}
}

// FromEvent records what a locker's event says of the fleet's work (a
// configuration applied or refused, an update applied or failed), in the
// transaction that stores the event.
func (s *Service) FromEvent(tx Tx, lockerID string, e protocol.Event, data any) error {
	if err := s.configFromEvent(tx, lockerID, e, data); err != nil {
		return err
	}
	return s.updateFromEvent(tx, lockerID, e, data)
}

// Revoked is why locker id gets nothing more from the hub (its
// credentials were revoked), or nil.
func Revoked(docs Docs, id string) error { return revokedError(docs, id) }

// Periodic is the fleet's work done by the leader on its timer: the
// broker certificates near their end alarmed (hourly), the revocation
// list rewritten (daily), the rollouts moved on.
func (s *Service) Periodic(now time.Time) {
	if now.Sub(time.Unix(0, s.certsSwept.Load())) >= time.Hour {
		s.certsSwept.Store(now.UnixNano())
		s.SweepCertificates(now)
	}
	if now.Sub(time.Unix(0, s.crlWritten.Load())) >= crlRefresh {
		if err := s.WriteCRL(now); err != nil {
			s.log.Error("the revocation list was not written", "err", err)
		}
	}
	s.WorkRollouts()
}

var errNoProvisioning = errors.New("this hub cannot provision lockers (no configuration validator)")
