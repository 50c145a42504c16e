package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/jsonhttp"
)

// Client talks to a running lockerd's API: lockerctl and the end-to-end
// tests use it.
type Client struct {
	Addr string // host:port of api.listen
	// Token is lockerd's per-boot API token (ReadToken), for the admin
	// routes; "" sends none.
	Token string
	HTTP  *http.Client
}

// NewClient returns a client for the API at addr.
func NewClient(addr string) *Client {
	return &Client{Addr: addr, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Do sends body (if any) as JSON and decodes the reply into into (if any).
// A non-2xx reply is an error carrying the API's message.
func (c *Client) Do(method, path string, body, into any) error {
	var h http.Header
	if c.Token != "" {
		h = http.Header{"Authorization": {"Bearer " + c.Token}}
	}
	return jsonhttp.Do(c.HTTP, "API at "+c.Addr, method, "http://"+c.Addr+path, h, body, into)
}

// Status reads GET /v1/status.
func (c *Client) Status() (locker.Status, error) {
	var st locker.Status
	err := c.Do("GET", "/v1/status", nil, &st)
	return st, err
}

// Orders reads every page of GET /v1/orders.
func (c *Client) Orders() ([]OrderView, error) {
	var all []OrderView
	after := ""
	for {
		var page []OrderView
		if err := c.Do("GET", "/v1/orders?limit=1000&after="+url.QueryEscape(after), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < 1000 {
			return all, nil
		}
		after = page[len(page)-1].ID
	}
}

// AddOrder creates an order; the reply holds its pickup code.
func (c *Client) AddOrder(req AddOrderRequest) (AddOrderReply, error) {
	var rep AddOrderReply
	err := c.Do("POST", "/v1/orders", req, &rep)
	return rep, err
}

// Events reads outbox events after seq (at most limit; 0 = server default).
func (c *Client) Events(after uint64, limit int) ([]locker.Event, error) {
	var evs []locker.Event
	err := c.Do("GET", fmt.Sprintf("/v1/events?after=%d&limit=%d", after, limit), nil, &evs)
	return evs, err
}

// Scan injects a scan.
func (c *Client) Scan(scanner, text string) (locker.ScanResult, error) {
	var res locker.ScanResult
	err := c.Do("POST", "/v1/scan", ScanRequest{Scanner: scanner, Text: text}, &res)
	return res, err
}

// Open is a maintenance open.
func (c *Client) Open(compartment, reason string) (locker.ScanResult, error) {
	var res locker.ScanResult
	err := c.Do("POST", "/v1/open", OpenRequest{Compartment: compartment, Reason: reason}, &res)
	return res, err
}

// Service puts a compartment in or out of service.
func (c *Client) Service(compartment string, inService bool, reason string) error {
	return c.Do("POST", "/v1/service", ServiceRequest{Compartment: compartment, InService: inService, Reason: reason}, nil)
}
