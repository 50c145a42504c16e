package mqttlink

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// paho tries its brokers in the order given, from the first, at every
// (re)connect: a first broker that takes connections but never
// acknowledges anything, or drops them every few minutes, keeps a healthy
// second one waiting for ever. So the link turns the list: paho still
// walks its list, but the connection it opens for the j-th entry goes to
// entry j+offset, and offset moves on at every failure (a lost connection,
// or no publish progress: see publishBatch).

// dial opens the network connection for paho's attempt at uri, to the
// broker the rotation puts in uri's place.
func (k *Link) dial(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	target := uri
	if n := len(k.brokers); n > 1 {
		j := 0
		for i, b := range k.brokers {
			if b.String() == uri.String() {
				j = i
			}
		}
		target = k.brokers[(j+int(k.rotation.Load()))%n]
	}
	k.log.Debug("mqtt dial", "broker", target.Redacted())
	conn, err := openConnection(target, o)
	if err != nil {
		return nil, err
	}
	return newBoundedConn(conn, k.cfg.MaxMessage, k.queue.marker), nil // (see boundedConn)
}

// rotate makes the next connection attempt start at the next broker.
func (k *Link) rotate(why string) {
	if len(k.brokers) < 2 {
		return
	}
	next := k.rotation.Add(1)
	k.log.Warn("mqtt: trying the next broker first", "why", why, "broker", k.brokers[int(next)%len(k.brokers)].Redacted())
}

// openConnection opens a network connection to a broker URL as paho does
// (tcp, tls and websockets; paho's own is not exported).
func openConnection(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	dialer := o.Dialer
	if dialer == nil {
		dialer = &net.Dialer{Timeout: 30 * time.Second}
	}
	if o.ConnectTimeout > 0 {
		d := *dialer
		d.Timeout = o.ConnectTimeout
		dialer = &d
	}
	switch uri.Scheme {
	case "tcp", "mqtt":
		return dialer.Dial("tcp", uri.Host)
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		return tls.DialWithDialer(dialer, "tcp", uri.Host, o.TLSConfig)
	case "ws", "wss":
		u := *uri
		u.User = nil
		var tlsc *tls.Config
		if uri.Scheme == "wss" {
			tlsc = o.TLSConfig
		}
		return mqtt.NewWebsocket(u.String(), tlsc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	}
	return nil, errors.New(fmt.Sprint("mqtt: unknown broker scheme ", uri.Scheme))
}
