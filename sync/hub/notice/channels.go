package notice

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/lockerd/lockerd/sync/hub/egress"
	"github.com/lockerd/lockerd/sync/hub/webhook"
)

// Email sends notices over SMTP (a submission server: the library's
// mail relay), one message per notice, plain text in UTF-8. Its
// Message-ID is the notice's, so that a second copy sent after a crash
// can be recognised.
type Email struct {
	Addr     string // host:port
	From     string // the sender address
	Username string // with Password: AUTH PLAIN (over TLS only)
	Password string
	// TLS: "starttls" (the default; refused without it), "tls" (implicit,
	// port 465), or "none" (a relay on the same host or network only).
	TLS       string
	TLSConfig *tls.Config // nil: the system's roots, ServerName from Addr
	Domain    string      // of the Message-ID (default: From's domain)
}

// Send delivers m to its recipient's address.
func (e *Email) Send(ctx context.Context, m Message) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(20 * time.Second)
	}
	host, _, err := net.SplitHostPort(e.Addr)
	if err != nil {
		return fmt.Errorf("smtp address %q: %w", e.Addr, err)
	}
	tc := e.TLSConfig
	if tc == nil {
		tc = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	d := net.Dialer{Deadline: deadline}
	conn, err := d.DialContext(ctx, "tcp", e.Addr)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	// The whole conversation ends by the deadline, however the server
	// stalls (a server that answers nothing would hold the sender).
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var c *smtp.Client
	switch e.TLS {
	case "tls":
		c = smtp.NewClient(tls.Client(conn, tc))
	case "none":
		c = smtp.NewClient(conn)
	default:
		c, err = smtp.NewClientStartTLS(conn, tc)
		if err != nil {
			conn.Close()
			return fmt.Errorf("smtp starttls: %w", err)
		}
	}
	defer c.Close()
	if e.Username != "" {
		if e.TLS == "none" {
			return errors.New("smtp: a password is not sent without TLS")
		}
		if err := c.Auth(sasl.NewPlainClient("", e.Username, e.Password)); err != nil {
			return fmt.Errorf("smtp auth: %w", err)
		}
	}
	if err := c.SendMail(e.From, []string{m.To}, bytes.NewReader(e.compose(m))); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	_ = c.Quit()
	return nil
}

// compose is m as an RFC 5322 message.
func (e *Email) compose(m Message) []byte {
	domain := e.Domain
	if domain == "" {
		_, domain, _ = strings.Cut(e.From, "@")
	}
	var b bytes.Buffer
	h := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	h("From", e.From)
	h("To", m.To)
	h("Subject", mime.BEncoding.Encode("utf-8", m.Subject))
	h("Date", time.Now().Format(time.RFC1123Z))
	h("Message-ID", "<"+m.ID+"@"+domain+">")
	h("Content-Language", m.Lang)
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "8bit")
	h("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	b.WriteString(strings.ReplaceAll(m.Text, "\n", "\r\n"))
	return b.Bytes()
}

// HTTP sends notices to a gateway (an SMS or WeChat template-message
// service) as one signed JSON POST each: the signature header is the
// webhooks' (HMAC-SHA256 with the secret over "UNIX." + body), and
// Idempotency-Key is the notice's id. A 2xx answer is sent; any other is
// retried.
type HTTP struct {
	URL    string
	Secret string
	client *http.Client
}

// NewHTTP makes the channel; its calls go through the egress policy.
func NewHTTP(url, secret string, policy egress.Policy, timeout time.Duration) (*HTTP, error) {
	if err := policy.CheckURL(url); err != nil {
		return nil, fmt.Errorf("notice gateway url: %w", err)
	}
	if len(secret) < 16 {
		return nil, errors.New("notice gateway secret: at least 16 characters")
	}
	return &HTTP{URL: url, Secret: secret, client: policy.Client(timeout)}, nil
}

// Send posts m.
func (h *HTTP) Send(ctx context.Context, m Message) error {
	body, err := json.Marshal(map[string]any{"id": m.ID, "kind": m.Kind, "to": m.To, "lang": m.Lang, "order": m.Order,
		"locker": m.Locker, "code": m.Code, "link": m.Link, "place": m.Place, "address": m.Address, "hours": m.Hours,
		"last_day": m.LastDay, "subject": m.Subject, "text": m.Text})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lockerhub-notices/1")
	req.Header.Set("Idempotency-Key", m.ID)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(h.Secret, time.Now(), body))
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the gateway answered %s", resp.Status)
	}
	return nil
}
