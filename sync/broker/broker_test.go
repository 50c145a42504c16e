package broker

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestOpenBrokerOnlyOnLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0"} {
		if b, err := Start(Config{Addr: addr, Prefix: "lk", Central: "hub", Log: quiet}); !errors.Is(err, ErrOpenBroker) {
			if b != nil {
				b.Close()
			}
			t.Fatalf("%s without users: %v, want ErrOpenBroker", addr, err)
		}
	}
	b, err := Start(Config{Addr: "0.0.0.0:0", Prefix: "lk", Central: "hub", Users: map[string]string{"hub": "x"}, Log: quiet})
	if err != nil {
		t.Fatalf("with users: %v", err)
	}
	b.Close()
}

func connect(t *testing.T, url, clientID, user, pass string) (mqtt.Client, error) {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

func TestUsersAndACL(t *testing.T) {
	users := map[string]string{"hub": "hubpw", "l1": "pw1", "l2": "pw2"}
	// l7 was provisioned by the hub: its password is the hub's to check.
	provisioned := func(id string, pw []byte) bool { return id == "l7" && string(pw) == "pw7" }
	b, err := Start(Config{Addr: "127.0.0.1:0", Prefix: "lk", Central: "hub", Users: users, Check: provisioned, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	url := "tcp://" + b.Addr()

	tests := []struct {
		name, id, user, pass string
		ok                   bool
	}{
		{"locker as itself", "l1", "l1", "pw1", true},
		{"wrong password", "l1", "l1", "pw2", false},
		{"unknown identity", "l9", "l9", "x", false},
		{"no password", "l1", "l1", "", false},
		{"another locker's session", "l2", "l1", "pw1", false},
		{"central with its own client id", "hub-console", "hub", "hubpw", true},
		{"a provisioned locker", "l7", "l7", "pw7", true},
		{"a provisioned locker, wrong password", "l7", "l7", "pw1", false},
		{"a provisioned locker in another's session", "l1", "l7", "pw7", false},
		{"a users-file locker is not asked of the hub", "l1", "l1", "pw7", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := connect(t, url, tt.id, tt.user, tt.pass)
			if (err == nil) != tt.ok {
				t.Fatalf("connect: %v, want ok %v", err, tt.ok)
			}
		})
	}

	// l2 listens on its own downlink and the central on every uplink. l1
	// tries to read l2's downlink, to send l2 a command and to publish as
	// l2 (the broker cuts it off for each forged publish, as an MQTT 3.1.1
	// broker does); then l1's own event and the central's command follow.
	// A forged message let through would be delivered before those, so the
	// first message each side receives must be the genuine one.
	got := make(chan string, 8)
	l2, err := connect(t, url, "l2", "l2", "pw2")
	if err != nil {
		t.Fatal(err)
	}
	l2.Subscribe("lk/l2/down/#", 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }).Wait()
	hubEvts := make(chan string, 8)
	hub, err := connect(t, url, "hub", "hub", "hubpw")
	if err != nil {
		t.Fatal(err)
	}
	hub.Subscribe("lk/+/up/#", 1, func(_ mqtt.Client, m mqtt.Message) { hubEvts <- m.Topic() }).Wait()
	spy := make(chan string, 8)
	for _, forged := range []string{"lk/l2/down/cmd", "lk/l2/up/evt", "lk/central/status"} {
		l1, err := connect(t, url, "l1", "l1", "pw1")
		if err != nil {
			t.Fatal(err)
		}
		l1.Subscribe("lk/l2/down/#", 1, func(_ mqtt.Client, m mqtt.Message) { spy <- string(m.Payload()) }).Wait()
		l1.Publish(forged, 1, false, "forged").WaitTimeout(2 * time.Second)
		l1.Disconnect(10)
	}
	l1, err := connect(t, url, "l1", "l1", "pw1")
	if err != nil {
		t.Fatal(err)
	}
	l1.Publish("lk/l1/up/evt", 1, false, "own").Wait()
	hub.Publish("lk/l2/down/cmd", 1, false, "from hub").Wait()
	select {
	case p := <-got:
		if p != "from hub" {
			t.Fatalf("l2 received %q first", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the central's message did not reach l2")
	}
	select {
	case topic := <-hubEvts:
		if topic != "lk/l1/up/evt" {
			t.Fatalf("the central received an event on %s first", topic)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("l1's own event did not reach the central")
	}
	select {
	case p := <-spy:
		t.Fatalf("l1 read l2's downlink: %q", p)
	default:
	}
}

func TestReadUsers(t *testing.T) {
	p := filepath.Join(t.TempDir(), "users")
	os.WriteFile(p, []byte("# lockers\nl1:pw1\n\nhub:secret:with:colons\n"), 0o600)
	us, err := ReadUsers(p)
	if err != nil || us["l1"] != "pw1" || us["hub"] != "secret:with:colons" {
		t.Fatalf("ReadUsers = %v, %v", us, err)
	}
	os.WriteFile(p, []byte("l1pw\n"), 0o600)
	if _, err := ReadUsers(p); err == nil || !strings.Contains(err.Error(), ":1:") {
		t.Fatalf("bad line: %v", err)
	}
}

// The ACL as a table: a locker writes only its own uplink and status,
// reads only its own downlink, its status and the central's status; the
// central does everything; a wildcard filter over other lockers is no
// topic of one's own.
func TestAllowed(t *testing.T) {
	tests := []struct {
		id, topic string
		write, ok bool
	}{
		{"l1", "lk/l1/up/evt", true, true},
		{"l1", "lk/l1/status", true, true},
		{"l1", "lk/l2/up/evt", true, false},
		{"l1", "lk/l1/down/cmd", true, false},
		{"l1", "lk/central/status", true, false},
		{"l1", "lk/l1/down/#", false, true},
		{"l1", "lk/l1/down/cmd", false, true},
		{"l1", "lk/central/status", false, true},
		{"l1", "lk/l2/down/cmd", false, false},
		{"l1", "lk/+/down/#", false, false},
		{"l1", "lk/#", false, false},
		{"l1", "lk/l1/up/evt", false, false},
		{"l1", "other/l1/up/evt", true, false},
		{"hub", "lk/l2/down/cmd", true, true},
		{"hub", "lk/+/up/#", false, true},
	}
	for _, tt := range tests {
		if got := Allowed("lk", "hub", tt.id, tt.topic, tt.write); got != tt.ok {
			t.Errorf("%s %s write=%v: %v, want %v", tt.id, tt.topic, tt.write, got, tt.ok)
		}
	}
}
