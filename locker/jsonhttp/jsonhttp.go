package jsonhttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// MaxReply bounds a reply read: the largest is a page of events.
const MaxReply = 64 << 20

// Do sends body (if not nil) as JSON to url with method and the headers
// given, and decodes the reply into into (if not nil). what names the
// server in a connection error.
func Do(c *http.Client, what, method, url string, header http.Header, body, into any) error {
	var rd io.Reader
	ctype := "application/json"
	if r, ok := body.(io.Reader); ok {
		// An upload: sent as it is.
		rd, ctype = r, "application/octet-stream"
	} else if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s not reachable: %w", what, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxReply))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, req.URL.Path, resp.Status)
	}
	if into != nil {
		return json.Unmarshal(raw, into)
	}
	return nil
}
