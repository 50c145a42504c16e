package fleet

// Provisioning a new cabinet: an admin makes a one-time token bound to a
// locker id (stored hashed, expiring); the technician gives it to the
// blank cabinet (lockerctl provision), which sends it to the hub's
// public endpoint and receives its identity, broker credentials, the
// central's key, the pickup key and its configuration. The reply is
// authenticated with the token's secret (an HMAC the cabinet checks
// before it writes anything), so a reply altered on the way is refused
// even before the cabinet knows the central's key. A token is used once.

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/protocol"
)

// ProvisionToken is a one-time provisioning token as the hub keeps it:
// its secret only as a SHA-256.
type ProvisionToken struct {
	ID      string    `json:"id"`
	Locker  string    `json:"locker"`
	Hash    string    `json:"hash"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	By      string    `json:"by,omitempty"`
	// Config is the lockerd configuration to install (YAML), validated
	// when the token was made.
	Config   string    `json:"config,omitempty"`
	UsedAt   time.Time `json:"used_at,omitzero"`
	UsedFrom string    `json:"used_from,omitempty"`
}

// Credential is a locker's broker password (as a SHA-256: it is a random
// 32-byte secret), issued by provisioning, and the public key the cabinet
// made for itself.
type Credential struct {
	ID        string    `json:"id"` // the locker id, which is the broker identity
	Hash      string    `json:"hash"`
	PublicKey string    `json:"public_key,omitempty"`
	Issued    time.Time `json:"issued"`
	// The broker client certificate issued with it (a hub with a client
	// CA): its serial (hex) and end.
	CertSerial  string    `json:"cert_serial,omitempty"`
	CertExpires time.Time `json:"cert_expires,omitzero"`
	// Revoked (lockerhub provision revoke): the broker refuses them, the
	// hub sends the locker nothing more, until it is provisioned again.
	Revoked      time.Time `json:"revoked,omitzero"`
	RevokedBy    string    `json:"revoked_by,omitempty"`
	RevokeReason string    `json:"revoke_reason,omitempty"`
}

// Provisioning bounds.
const (
	DefaultProvisionTTL = 24 * time.Hour
	MaxProvisionTTL     = 30 * 24 * time.Hour
	MaxLockerConfig     = 256 << 10
)

// Provisioning is what the hub gives a cabinet besides its keys.
type Provisioning struct {
	// BrokerURLs are the broker addresses a provisioned locker connects
	// to (in order); BrokerCA is the CA (PEM) it verifies them with.
	BrokerURLs []string
	BrokerCA   string
	// ClientCA, when set, issues each provisioned cabinet a broker client
	// certificate (CN the locker id) besides its password.
	ClientCA *ClientCA
	// Validate checks a lockerd configuration with lockerd's own
	// validator (FILE:LINE errors); Render fills in what provisioning
	// gives the cabinet (its id, keys, broker). lockerhub sets both.
	Validate func(name string, raw []byte) error
	Render   func(raw []byte, p ProvisionedLocker) ([]byte, error)
}

// ProvisionedLocker is what Provisioning.Render fills into a locker's
// configuration: the files lockerctl provision writes beside it.
type ProvisionedLocker struct {
	Locker           string
	Prefix           string
	BrokerURLs       []string
	Username         string
	CentralPublicKey string // base64
	// ReleaseKey (base64), when the hub has one: a configuration with an
	// update section gets it as update.release_key.
	ReleaseKey string
	// File names, relative to the config's directory.
	PickupKeyFile, PasswordFile, BrokerCAFile string
	// ClientCertFile and ClientKeyFile: the broker client certificate
	// and its key, for a cabinet that was issued one.
	ClientCertFile, ClientKeyFile string
}

// NewProvisionToken is a request for a token.
type NewProvisionToken struct {
	Locker string `json:"locker"`
	Config string `json:"config,omitempty"` // YAML
	TTL    string `json:"ttl,omitempty"`    // default 24h
}

// ProvisionTokenCreated is a new token, shown once.
type ProvisionTokenCreated struct {
	Token   string         `json:"token"`
	Record  ProvisionToken `json:"record"`
	Warning string         `json:"warning,omitempty"`
}

// CreateProvisionToken makes a one-time token for locker req.Locker; the
// hub serves that locker from now on.
func (s *Service) CreateProvisionToken(req NewProvisionToken, by string) (ProvisionTokenCreated, error) {
	if err := locker.CheckLockerID(req.Locker); err != nil {
		return ProvisionTokenCreated{}, err
	}
	ttl := DefaultProvisionTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d < time.Minute || d > MaxProvisionTTL {
			return ProvisionTokenCreated{}, fmt.Errorf("ttl %q: want a duration from 1m to %v", req.TTL, MaxProvisionTTL)
		}
		ttl = d
	}
	p := s.cfg.Provisioning
	if req.Config == "" {
		return ProvisionTokenCreated{}, errors.New("a lockerd configuration for the cabinet is required (its hardware wiring): give --config FILE")
	}
	if len(req.Config) > MaxLockerConfig {
		return ProvisionTokenCreated{}, fmt.Errorf("configuration over %d bytes", MaxLockerConfig)
	}
	if p.Validate == nil || p.Render == nil {
		return ProvisionTokenCreated{}, errNoProvisioning
	}
	// Validated as the cabinet will run it: with what provisioning fills in.
	rendered, err := p.Render([]byte(req.Config), s.provisioned(req.Locker, p.ClientCA != nil))
	if err != nil {
		return ProvisionTokenCreated{}, err
	}
	if err := p.Validate(req.Locker+".yaml", rendered); err != nil {
		return ProvisionTokenCreated{}, err
	}
	id, secret := randomHex(8), randomHex(32)
	now := time.Now().UTC()
	rec := ProvisionToken{ID: id, Locker: req.Locker, Hash: auth.HashSecret(secret), Created: now, Expires: now.Add(ttl),
		By: by, Config: req.Config}
	err = s.cfg.Store.Update(func(tx Tx) error {
		if err := tx.Docs.PutDoc(DocProvision, id, rec); err != nil {
			return err
		}
		return tx.Lockers.Serve(req.Locker, "provision", now)
	})
	if err != nil {
		return ProvisionTokenCreated{}, err
	}
	s.log.Info("provisioning token made", "locker", req.Locker, "token", id, "expires", rec.Expires)
	out := ProvisionTokenCreated{Token: protocol.ProvisionTokenPrefix + id + "_" + secret, Record: rec}
	out.Record.Hash = ""
	return out, nil
}

// ProvisionTokens lists the tokens (hashes left out).
func (s *Service) ProvisionTokens() ([]ProvisionToken, error) {
	var out []ProvisionToken
	err := s.cfg.Store.View(func(tx Tx) error {
		var err error
		out, err = docsOf[ProvisionToken](tx.Docs, DocProvision)
		return err
	})
	for i := range out {
		out[i].Hash = ""
	}
	return out, err
}

// ProvisionError is a refused provisioning: Status is the HTTP status.
type ProvisionError struct {
	Status int
	Msg    string
}

func (e *ProvisionError) Error() string { return e.Msg }

// Provision answers a blank cabinet: the token is checked (known, its
// secret, not used, not expired, for this locker), used up, and the
// cabinet's credentials made, in one transaction.
func (s *Service) Provision(req protocol.ProvisionRequest, from string, now time.Time) (protocol.ProvisionReply, error) {
	refuse := func(status int, format string, args ...any) (protocol.ProvisionReply, error) {
		err := &ProvisionError{Status: status, Msg: fmt.Sprintf(format, args...)}
		s.cfg.Audit(auth.AuditRec{At: now, Who: "provisioning", Action: "POST /v1/provision", Target: req.Locker, Detail: err.Msg, From: from, Status: status})
		s.log.Warn("provisioning refused", "locker", req.Locker, "from", from, "why", err.Msg)
		return protocol.ProvisionReply{}, err
	}
	id, secret, err := protocol.SplitProvisionToken(req.Token)
	if err != nil {
		return refuse(403, "not a provisioning token (lhp_…): check what was typed or scanned")
	}
	if pk, err := base64.StdEncoding.DecodeString(req.PublicKey); err != nil || len(pk) != 32 {
		return refuse(400, "public_key: want the cabinet's Ed25519 public key, base64")
	}
	if len(s.cfg.PickupKey) == 0 || s.cfg.Provisioning.Render == nil {
		return refuse(503, "this hub cannot provision lockers (no pickup key or configuration validator)")
	}
	// Checked before the token is used: a bad request leaves it usable.
	ca := s.cfg.Provisioning.ClientCA
	var csr *x509.CertificateRequest
	if ca != nil {
		der, err := base64.StdEncoding.DecodeString(req.CSR)
		if err == nil {
			csr, err = ParseCSR(der)
		}
		if err != nil {
			return refuse(400, "this hub issues broker certificates: want a certificate request (csr, base64 DER; lockerctl provision sends one): %v", err)
		}
	}
	password := randomHex(32)
	var certPEM string
	supersededCert := false
	var rec ProvisionToken
	var refusal *ProvisionError
	err = s.cfg.Store.Update(func(tx Tx) error {
		refusal = nil
		found, err := tx.Docs.Doc(DocProvision, id, &rec)
		switch {
		case err != nil:
			return err
		case !found || subtle.ConstantTimeCompare([]byte(auth.HashSecret(secret)), []byte(rec.Hash)) != 1:
			refusal = &ProvisionError{403, "unknown provisioning token: make one with lockerhub provision create"}
		case !rec.UsedAt.IsZero():
			refusal = &ProvisionError{409, fmt.Sprintf("this provisioning token was used at %s (from %s): make a new one", rec.UsedAt.Format(time.RFC3339), rec.UsedFrom)}
		case now.After(rec.Expires):
			refusal = &ProvisionError{410, fmt.Sprintf("this provisioning token expired at %s: make a new one", rec.Expires.Format(time.RFC3339))}
		case req.Locker != "" && rec.Locker != req.Locker:
			refusal = &ProvisionError{403, fmt.Sprintf("this provisioning token is for locker %s, not %s", rec.Locker, req.Locker)}
		}
		if refusal != nil {
			return nil
		}
		rec.UsedAt, rec.UsedFrom = now.UTC(), from
		if err := tx.Docs.PutDoc(DocProvision, id, rec); err != nil {
			return err
		}
		// The certificate of a cabinet provisioned before is revoked: its
		// old card's identity goes with it.
		var prev Credential
		if found, err := tx.Docs.Doc(DocCredential, rec.Locker, &prev); err != nil {
			return err
		} else if found && prev.Revoked.IsZero() {
			if err := revokeCert(tx.Docs, prev, "provisioning", "provisioned again", now); err != nil {
				return err
			}
			supersededCert = prev.CertSerial != ""
		}
		cred := Credential{ID: rec.Locker, Hash: auth.HashSecret(password), PublicKey: req.PublicKey, Issued: now.UTC()}
		if ca != nil {
			if certPEM, cred.CertSerial, cred.CertExpires, err = ca.Issue(rec.Locker, csr, now); err != nil {
				return err
			}
		}
		if err := tx.Docs.PutDoc(DocCredential, rec.Locker, cred); err != nil {
			return err
		}
		return alarm.Clear(tx.Alarms, rec.Locker, alarm.CertExpiring, "", "provisioned again", time.Now())
	})
	if err != nil {
		return protocol.ProvisionReply{}, err
	}
	if refusal != nil {
		return refuse(refusal.Status, "%s", refusal.Msg)
	}
	if supersededCert {
		if err := s.WriteCRL(now); err != nil {
			s.log.Error("the revocation list was not written", "err", err)
		}
	}
	p := s.provisioned(rec.Locker, certPEM != "")
	cfg, err := s.cfg.Provisioning.Render([]byte(rec.Config), p)
	if err != nil {
		return protocol.ProvisionReply{}, err
	}
	body, err := json.Marshal(protocol.ProvisionBody{Locker: rec.Locker, Prefix: s.cfg.Prefix, BrokerURLs: p.BrokerURLs, Username: rec.Locker,
		Password: password, BrokerCA: s.cfg.Provisioning.BrokerCA, ClientCert: certPEM, CentralPublicKey: p.CentralPublicKey,
		PickupKeyHex: hex.EncodeToString(s.cfg.PickupKey), Config: string(cfg), Issued: now.UTC()})
	if err != nil {
		return protocol.ProvisionReply{}, err
	}
	s.cfg.Audit(auth.AuditRec{At: now, Who: "provisioning", Action: "POST /v1/provision", Target: rec.Locker,
		Detail: "token " + rec.ID + " used", From: from, Status: 200})
	s.log.Info("locker provisioned", "locker", rec.Locker, "token", rec.ID, "from", from, "broker_certificate", certPEM != "")
	return protocol.ProvisionReply{Body: base64.StdEncoding.EncodeToString(body), MAC: protocol.ProvisionMAC(secret, body)}, nil
}

// provisioned is what provisioning fills into lockerID's configuration;
// withCert: the cabinet was issued a broker client certificate.
func (s *Service) provisioned(lockerID string, withCert bool) ProvisionedLocker {
	p := ProvisionedLocker{Locker: lockerID, Prefix: s.cfg.Prefix, BrokerURLs: s.cfg.Provisioning.BrokerURLs, Username: lockerID,
		PickupKeyFile: protocol.ProvPickupKeyFile, PasswordFile: protocol.ProvPasswordFile}
	if withCert {
		p.ClientCertFile, p.ClientKeyFile = protocol.ProvClientCert, protocol.ProvClientKey
	}
	if len(p.BrokerURLs) == 0 {
		p.BrokerURLs = s.cfg.Brokers
	}
	if s.cfg.Provisioning.BrokerCA != "" {
		p.BrokerCAFile = protocol.ProvBrokerCAFile
	}
	if s.cfg.SigningKey != nil {
		p.CentralPublicKey = base64.StdEncoding.EncodeToString(s.cfg.SigningKey.Public().(ed25519.PublicKey))
	}
	if s.cfg.ReleaseKey != nil {
		p.ReleaseKey = base64.StdEncoding.EncodeToString(s.cfg.ReleaseKey)
	}
	return p
}

// BrokerPasswordOK reports whether password is the broker password
// provisioning issued to identity (the embedded broker asks).
func (s *Service) BrokerPasswordOK(identity string, password []byte) bool {
	var c Credential
	found := false
	if err := s.cfg.Store.View(func(tx Tx) error {
		var err error
		found, err = tx.Docs.Doc(DocCredential, identity, &c)
		return err
	}); err != nil || !found {
		return false
	}
	return c.Revoked.IsZero() && subtle.ConstantTimeCompare([]byte(auth.HashSecret(string(password))), []byte(c.Hash)) == 1
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}
