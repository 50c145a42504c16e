package fleet

// Broker client certificates: a hub with a client CA issues each cabinet
// it provisions a certificate whose common name is the locker id, for a
// broker that authenticates lockers by certificate (Mosquitto's
// use_identity_as_username with docs/mosquitto/acl: the name is what the
// ACL's %u matches). The cabinet makes the key pair and sends a
// certificate request; the private key never leaves it.

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/lockerd/lockerd/sync/hub/alarm"
)

// ClientCA signs the broker client certificates of provisioned lockers.
type ClientCA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// TTL is how long an issued certificate is valid (default
	// DefaultClientCertTTL); a cabinet is provisioned again before then.
	TTL time.Duration
	// PublishCRL, when set, is given the CA's revocation list (PEM)
	// whenever it changes, at start and daily (lockerhub writes it to
	// provision.client_ca.crl_file, for the broker).
	PublishCRL func(pem []byte) error
}

// DefaultClientCertTTL is a cabinet's certificate lifetime: about its
// service life between technician visits.
const DefaultClientCertTTL = 5 * 365 * 24 * time.Hour

// maxCSR bounds a certificate request (a P-256 one is under 300 bytes).
const maxCSR = 4 << 10

// ParseCSR reads a cabinet's certificate request and checks its
// signature (the cabinet holds the key).
func ParseCSR(der []byte) (*x509.CertificateRequest, error) {
	if len(der) == 0 || len(der) > maxCSR {
		return nil, fmt.Errorf("csr: want a certificate request of 1 to %d bytes", maxCSR)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("csr: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("csr: its signature: %w", err)
	}
	return csr, nil
}

// Issue returns a PEM client certificate for lockerID with the request's
// public key and nothing else of it: the name is the hub's.
func (ca *ClientCA) Issue(lockerID string, csr *x509.CertificateRequest, now time.Time) (certPEM string, serial string, notAfter time.Time, err error) {
	ttl := ca.TTL
	if ttl <= 0 {
		ttl = DefaultClientCertTTL
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", "", time.Time{}, err
	}
	notAfter = now.Add(ttl).UTC()
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter // never outlives its CA
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: lockerID},
		// An hour back: a cabinet's clock a little behind the hub's.
		NotBefore:             now.Add(-time.Hour).UTC(),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("issuing the broker certificate: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), sn.Text(16), notAfter, nil
}

// CheckClientCA checks that cert can sign client certificates with key.
//
// withCRL: it signs revocation lists too (key usage cRLSign).
func CheckClientCA(cert *x509.Certificate, key crypto.Signer, withCRL bool) error {
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return errors.New("not a CA certificate (basic constraints CA:TRUE)")
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return errors.New("the CA certificate's key usage does not allow signing certificates")
	}
	if withCRL && cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return errors.New("the CA certificate's key usage does not allow signing revocation lists (cRLSign), which crl_file needs")
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("the key is not the CA certificate's")
	}
	return nil
}

// CertExpiryWarning: a cabinet's broker certificate ending within it
// raises alarm.CertExpiring.
const CertExpiryWarning = 30 * 24 * time.Hour

// SweepCertificates raises locker.certificate_expiring for the cabinets
// whose broker certificate ends within CertExpiryWarning of now, as the
// leader does hourly (tests call it with a clock of their own).
func (s *Service) SweepCertificates(now time.Time) {
	err := s.cfg.Store.Update(func(tx Tx) error {
		creds, err := docsOf[Credential](tx.Docs, DocCredential)
		if err != nil {
			return err
		}
		for _, c := range creds {
			// A revoked cabinet's certificate is not to be renewed.
			if c.CertSerial == "" || !c.Revoked.IsZero() || c.CertExpires.Sub(now) > CertExpiryWarning || alarm.IsOpen(tx.Alarms, c.ID, alarm.CertExpiring) {
				continue
			}
			verb := "ends"
			if !now.Before(c.CertExpires) {
				verb = "ended"
			}
			if err := s.cfg.Raise(tx.Alarms, tx.Hooks, alarm.Alarm{Locker: c.ID, Type: alarm.CertExpiring,
				Detail: fmt.Sprintf("its broker certificate (serial %s) %s at %s: provision the cabinet again before then (lockerhub provision create, lockerctl provision --force), or the broker refuses it",
					c.CertSerial, verb, c.CertExpires.Format(time.RFC3339))}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Warn("certificate sweep", "err", err)
	}
}
