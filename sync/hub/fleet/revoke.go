package fleet

// Revoking a cabinet's broker credentials: a cabinet stolen, scrapped or
// replaced. Its password stops working at the embedded broker at once;
// its client certificate's serial goes on the CRL the hub keeps for a
// broker that checks certificates (Mosquitto's crlfile, reread on
// SIGHUP); the hub sends it no new order or command. A cabinet provisioned
// again gets new credentials, and the certificate it had before is
// revoked as well: the old SD card's identity dies with it.

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// RevokedCert is a client certificate the hub revoked (kept by serial
// until it would have ended: the CRL lists it till then).
type RevokedCert struct {
	Serial  string    `json:"serial"` // hex
	Locker  string    `json:"locker"`
	At      time.Time `json:"at"`
	By      string    `json:"by"`
	Reason  string    `json:"reason"`
	Expires time.Time `json:"expires"`
}

// crlLifetime is how long a CRL the hub writes is valid: a broker refuses
// every certificate under an expired CRL, so the hub writes it again well
// before (crlRefresh) while it runs, and a hub down for weeks does not
// take the lockers' broker with it.
const (
	crlLifetime = 365 * 24 * time.Hour
	crlRefresh  = 24 * time.Hour
)

// maxRevokeReason bounds a revocation's reason (kept, logged, listed).
const maxRevokeReason = 500

// RevokeLocker revokes locker id's broker credentials (a password, and a
// client certificate if it had one) and rewrites the CRL.
func (s *Service) RevokeLocker(id, by, reason string, now time.Time) (Credential, error) {
	if reason == "" || len(reason) > maxRevokeReason {
		return Credential{}, fmt.Errorf("a reason of 1 to %d bytes is required (stolen, scrapped, replaced...)", maxRevokeReason)
	}
	var c Credential
	err := s.cfg.Store.Update(func(tx Tx) error {
		found, err := tx.Docs.Doc(DocCredential, id, &c)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("locker %q was not provisioned by this hub: no credentials to revoke", id)
		}
		if !c.Revoked.IsZero() {
			return fmt.Errorf("locker %q's credentials were revoked at %s", id, c.Revoked.Format(time.RFC3339))
		}
		c.Revoked, c.RevokedBy, c.RevokeReason = now.UTC(), by, reason
		if err := tx.Docs.PutDoc(DocCredential, id, c); err != nil {
			return err
		}
		return revokeCert(tx.Docs, c, by, reason, now)
	})
	if err != nil {
		return Credential{}, err
	}
	s.log.Warn("locker credentials revoked", "locker", id, "by", by, "reason", reason, "cert_serial", c.CertSerial)
	if err := s.WriteCRL(now); err != nil {
		return c, fmt.Errorf("revoked, but the CRL was not written: %w", err)
	}
	return c, nil
}

// CRL is the CA's revocation list of entries (PEM), valid from now for a
// year.
func (ca *ClientCA) CRL(entries []x509.RevocationListEntry, now time.Time) ([]byte, error) {
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		// Numbered by time: each list a broker is given is newer.
		Number: big.NewInt(now.UnixNano()), ThisUpdate: now.Add(-time.Minute).UTC(), NextUpdate: now.Add(crlLifetime).UTC(),
		RevokedCertificateEntries: entries}, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("the revocation list: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), nil
}

// revokeCert records c's certificate as revoked (if it has one).
func revokeCert(docs Docs, c Credential, by, reason string, now time.Time) error {
	if c.CertSerial == "" {
		return nil
	}
	return docs.PutDoc(DocRevoked, c.CertSerial, RevokedCert{Serial: c.CertSerial, Locker: c.ID, At: now.UTC(), By: by, Reason: reason, Expires: c.CertExpires})
}

// revokedError is why locker id gets nothing more from the hub, or nil.
func revokedError(docs Docs, id string) error {
	var c Credential
	if found, err := docs.Doc(DocCredential, id, &c); err != nil || !found || c.Revoked.IsZero() {
		return err
	}
	return fmt.Errorf("locker %q: its credentials were revoked at %s (%s): provision it again to serve it", id, c.Revoked.Format(time.RFC3339), c.RevokeReason)
}

// WriteCRL hands the client CA's revocation list (PEM) to
// ClientCA.PublishCRL: every revoked certificate not yet past its end. It
// is written at start, after each revocation and daily.
func (s *Service) WriteCRL(now time.Time) error {
	ca := s.cfg.Provisioning.ClientCA
	if ca == nil || ca.PublishCRL == nil {
		return nil
	}
	var revoked []RevokedCert
	if err := s.cfg.Store.View(func(tx Tx) error {
		var err error
		revoked, err = docsOf[RevokedCert](tx.Docs, DocRevoked)
		return err
	}); err != nil {
		return err
	}
	var entries []x509.RevocationListEntry
	for _, r := range revoked {
		sn, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok || (!r.Expires.IsZero() && r.Expires.Before(now)) {
			continue
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: sn, RevocationTime: r.At})
	}
	crl, err := ca.CRL(entries, now)
	if err != nil {
		return err
	}
	if err := ca.PublishCRL(crl); err != nil {
		return err
	}
	s.crlWritten.Store(now.UnixNano())
	s.log.Info("client certificate revocation list written", "revoked", len(entries))
	return nil
}
