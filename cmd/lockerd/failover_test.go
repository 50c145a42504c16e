package main

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/brokertest"
)

// deafBroker accepts MQTT connections, says CONNACK, and then never
// answers anything: no SUBACK, no PUBACK, no PINGRESP.
func deafBroker(t *testing.T) (string, func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan int, 1000)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- 1
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				if b, err := r.ReadByte(); err != nil || b>>4 != 1 { // CONNECT
					return
				}
				n, mult := 0, 1
				for {
					b, err := r.ReadByte()
					if err != nil {
						return
					}
					n += int(b&127) * mult
					if b < 128 {
						break
					}
					mult *= 128
				}
				if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
					return
				}
				c.Write([]byte{0x20, 0x02, 0x00, 0x00}) // CONNACK, accepted
				io.Copy(io.Discard, r)                  // and nothing ever again
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return "tcp://" + ln.Addr().String(), func() int { return len(conns) }
}

// TestDeafBrokerIsFailedOver: the first broker in mqtt.brokers accepts the
// connection but never acknowledges anything. lockerd takes that for a
// broken connection and moves on to the second (Mosquitto): every event
// reaches the central library.
func TestDeafBrokerIsFailedOver(t *testing.T) {
	deaf, attempts := deafBroker(t)
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	key, _ := newKey(t)
	c := startCentral(t, mq.URL, key, nil, "lockerhub")
	cab := newCabinet(t, "0s", withBrokers([]string{deaf, mq.URL}, c.Pub, "  publish_timeout: 1s\n"))
	began := time.Now()
	d := start(t, cab.Config)
	returns(t, d, 3)
	st := d.status()
	for {
		li, _ := c.Locker(lockerID)
		if li.Store == st.Store && li.Acked >= st.LastSeq {
			break
		}
		if time.Since(began) > 45*time.Second {
			t.Fatalf("events not at the central after %v (deaf broker tried %d times)\n%s", time.Since(began), attempts(), d.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("every event at the central %v after start; the deaf broker was tried %d times", time.Since(began).Round(time.Millisecond), attempts())
}
