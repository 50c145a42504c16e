package noticetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is a message the SMTP server received.
type Mail struct {
	From string
	To   []string
	Data []byte
}

// SMTP is a real SMTP server on a loopback port (go-smtp's), with
// STARTTLS on a certificate of its own; it keeps what it receives, and
// can be made to refuse (550) or to hang before answering a message.
type SMTP struct {
	Addr string
	// Roots trust the server's certificate (for the sender's TLS config);
	// CAPEM is that certificate, PEM (for a config's ca_file).
	Roots *x509.CertPool
	CAPEM []byte

	mu     sync.Mutex
	mails  []Mail
	refuse bool
	hang   chan struct{} // closed to release hung sessions; nil: not hanging
}

// StartSMTP runs the server until the test ends.
func StartSMTP(t testing.TB) *SMTP {
	t.Helper()
	cert, roots := selfSigned(t)
	s := &SMTP{Roots: roots, CAPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.AllowInsecureAuth = false
	srv.MaxMessageBytes = 1 << 20
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() {
		s.Hang(false)
		srv.Close()
	})
	return s
}

// Mails is what was received, in order.
func (s *SMTP) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Refuse makes the server refuse recipients (550) while on.
func (s *SMTP) Refuse(on bool) { s.mu.Lock(); s.refuse = on; s.mu.Unlock() }

// Hang makes the server take a message's data and never answer it, while
// on; off releases them (without keeping their mail).
func (s *SMTP) Hang(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case on && s.hang == nil:
		s.hang = make(chan struct{})
	case !on && s.hang != nil:
		close(s.hang)
		s.hang = nil
	}
}

type session struct {
	s    *SMTP
	from string
	to   []string
}

func (c *session) Reset()        { c.from, c.to = "", nil }
func (c *session) Logout() error { return nil }
func (c *session) Mail(from string, _ *smtp.MailOptions) error {
	c.from = from
	return nil
}

func (c *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	c.s.mu.Lock()
	refuse := c.s.refuse
	c.s.mu.Unlock()
	if refuse {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}
	}
	c.to = append(c.to, to)
	return nil
}

func (c *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	c.s.mu.Lock()
	hang := c.s.hang
	c.s.mu.Unlock()
	if hang != nil {
		<-hang
		return &smtp.SMTPError{Code: 451, Message: "released"}
	}
	c.s.mu.Lock()
	c.s.mails = append(c.s.mails, Mail{From: c.from, To: c.to, Data: data})
	c.s.mu.Unlock()
	return nil
}

// selfSigned is a certificate for 127.0.0.1 and localhost, and the pool
// that trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "noticetest SMTP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
