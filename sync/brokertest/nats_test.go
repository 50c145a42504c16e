package brokertest_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lockerd/lockerd/sync/brokertest"
)

// client connects to urls (tried in order) with a persistent session
// (clean session off, as lockerd and lockerhub connect), optionally with a
// will, and records what it receives on topics.
func client(t *testing.T, id string, urls []string, will string, topics ...string) (mqtt.Client, chan mqtt.Message) {
	t.Helper()
	got := make(chan mqtt.Message, 100)
	o := mqtt.NewClientOptions().SetClientID(id).SetCleanSession(false).SetProtocolVersion(4).
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond).
		SetMaxReconnectInterval(time.Second).SetKeepAlive(2 * time.Second)
	for _, u := range urls {
		o.AddBroker(u)
	}
	if will != "" {
		o.SetWill(will, "offline", 1, true)
	}
	subscribed := make(chan error, 1)
	o.SetOnConnectHandler(func(c mqtt.Client) {
		var err error
		for _, tp := range topics {
			tok := c.Subscribe(tp, 1, func(_ mqtt.Client, m mqtt.Message) { got <- m })
			if !tok.WaitTimeout(10 * time.Second) {
				err = fmt.Errorf("subscribe %s: no answer", tp)
			} else if tok.Error() != nil {
				err = fmt.Errorf("subscribe %s: %w", tp, tok.Error())
			}
		}
		select {
		case subscribed <- err:
		default:
		}
	})
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("%s: connect: %v", id, tok.Error())
	}
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: subscriptions not made", id)
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, got
}

func receive(t *testing.T, got chan mqtt.Message, what, payload string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	var other []string
	for {
		select {
		case m := <-got:
			if string(m.Payload()) == payload {
				return
			}
			other = append(other, fmt.Sprintf("%s %q retained=%v", m.Topic(), m.Payload(), m.Retained()))
		case <-deadline:
			t.Fatalf("never received %s (%q); received %v", what, payload, other)
		}
	}
}

func publish(t *testing.T, c mqtt.Client, topic, payload string, retained bool) {
	t.Helper()
	if tok := c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// What lockerd's protocol relies on, on a three-node NATS cluster with
// MQTT streams replicated on every node, and what a node's death does
// (nats-server 2.9.10):
//   - a retained birth is seen from every node, and survives its node;
//   - a client that subscribes in the seconds after a node died, while
//     the streams elect new leaders, may be given nothing on that
//     subscription — not the retained messages, and not what is published
//     later either — until it connects again. lockerd's link and
//     lockerhub check for it (each expects its own birth, or heartbeat, back on the
//     topic it subscribed) and reconnect;
//   - a QoS 1 message queued for an offline persistent session survives
//     the node it was queued on;
//   - a client whose node dies has NO will published (the node is gone):
//     the retained birth still says online until the locker reconnects
//     elsewhere and says so itself;
//   - a connection dropped without DISCONNECT has its will published.
func TestNATSClusterCarriesTheProtocol(t *testing.T) {
	c := brokertest.StartNATSCluster(t, 3)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]

	loc, _ := client(t, "locker-1", []string{n1.URL, n2.URL}, "lockers/v1/L1/status")
	publish(t, loc, "lockers/v1/L1/status", "online", true)
	_, seen3 := client(t, "watch-3", []string{n3.URL}, "", "lockers/v1/+/status")
	receive(t, seen3, "the retained birth on another node", "online")

	off, _ := client(t, "locker-2", []string{n1.URL}, "", "lockers/v1/L2/down/orders")
	off.Disconnect(50)
	central, _ := client(t, "central", []string{n2.URL}, "")
	publish(t, central, "lockers/v1/L2/down/orders", "rev-1", false)

	n1.Kill()
	// A watcher on n2 whose subscription works: one that is given the
	// retained birth (a client connecting again until one is). Its value
	// is still "online": no will fired for the client of the dead node.
	var seen2 chan mqtt.Message
	for i := 0; seen2 == nil; i++ {
		cl, w := client(t, fmt.Sprintf("watch-2-%d", i), []string{n2.URL}, "", "lockers/v1/+/status")
		select {
		case m := <-w:
			if string(m.Payload()) != "online" {
				t.Fatalf("the retained status after the locker's node died: %q, want online (no will)", m.Payload())
			}
			seen2 = w
		case <-time.After(3 * time.Second):
			cl.Disconnect(50)
			if i == 20 {
				t.Fatal("no subscription on n2 was given the retained birth after n1 died")
			}
		}
	}
	// The message queued before the node died, for the session, wherever
	// it connects (again, until its subscription works).
	for i := 0; ; i++ {
		cl, back := client(t, "locker-2", []string{n3.URL}, "", "lockers/v1/L2/down/orders")
		select {
		case m := <-back:
			if string(m.Payload()) != "rev-1" {
				t.Fatalf("queued message %q", m.Payload())
			}
		case <-time.After(3 * time.Second):
			cl.Disconnect(50)
			if i == 20 {
				t.Fatal("the message queued for the session before its node died never came")
			}
			continue
		}
		break
	}

	// locker-1 goes on through its next node.
	publish(t, loc, "lockers/v1/L1/status", "online-again", true)
	receive(t, seen2, "locker-1's birth through its next node", "online-again")

	// A connection dropped without DISCONNECT (a cabinet losing power)
	// has its will published, seen on another node.
	conn := rawConnect(t, n2.URL, "locker-3", "lockers/v1/L3/status", "offline")
	conn.Close()
	receive(t, seen3, "the will of a dropped connection", "offline")
}

// rawConnect opens an MQTT 3.1.1 session with a retained QoS 1 will by
// hand, so that the test can drop the connection without DISCONNECT.
func rawConnect(t *testing.T, url, id, willTopic, will string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "tcp://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	body := append(str("MQTT"), 4, 0x02|0x04|0x08|0x20, 0, 60) // clean session, will QoS 1 retained; keepalive 60 s
	body = append(append(append(body, str(id)...), str(willTopic)...), str(will)...)
	pkt := append([]byte{0x10, byte(len(body))}, body...) // len < 128: one length byte
	if _, err := conn.Write(pkt); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK %x %v", ack, err)
	}
	return conn
}
