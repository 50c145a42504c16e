package protocol_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/protocol"
)

// jsonFields lists a struct type's JSON fields (embedded structs' fields
// promoted), each with ",omitempty" when it is left out when empty.
func jsonFields(t reflect.Type) map[string]string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	out := map[string]string{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if f.Anonymous && tag == "" {
			maps.Copy(out, jsonFields(f.Type))
			continue
		}
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		out[name] = ""
		if strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero") {
			out[name] = ",omitempty"
		}
	}
	return out
}

func eventTypes() []string { return slices.Sorted(maps.Keys(protocol.EventPayloads)) }

// The core records exactly the event types the protocol knows, each with
// the same JSON fields as its wire form.
func TestCoreEventsMatchWire(t *testing.T) {
	core := locker.EventTypes()
	var coreTypes []string
	for typ, p := range core {
		coreTypes = append(coreTypes, string(typ))
		if p.EventType() != typ {
			t.Errorf("%T says it is %s, registered as %s", p, p.EventType(), typ)
		}
	}
	slices.Sort(coreTypes)
	if !slices.Equal(coreTypes, eventTypes()) {
		t.Fatalf("core event types %v\nwire event types %v", coreTypes, eventTypes())
	}
	for typ, p := range core {
		wire := protocol.EventPayloads[string(typ)]()
		if c, w := jsonFields(reflect.TypeOf(p)), jsonFields(reflect.TypeOf(wire)); !maps.Equal(c, w) {
			t.Errorf("%s: core %T %v, wire %T %v", typ, p, c, wire, w)
		}
	}
}

// fill sets every field of the struct v points to a value that is not
// empty, so that every field is encoded.
func fill(v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		if !f.CanSet() {
			continue
		}
		switch f.Kind() {
		case reflect.Struct:
			if f.Type() == reflect.TypeOf(time.Time{}) {
				f.Set(reflect.ValueOf(time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)))
			} else {
				fill(f)
			}
		case reflect.String:
			f.SetString("x")
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(2)
		case reflect.Uint64:
			f.SetUint(2)
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"A01"}))
		case reflect.Pointer:
			n := reflect.New(f.Type().Elem())
			n.Elem().SetInt(0)
			f.Set(n)
		}
	}
}

// Protocol v1's event data was written from maps, whose keys encoding/json
// sorts: the typed payloads encode their fields in the same order, so the
// bytes on the wire (and in stores written before) are unchanged.
func TestEventDataInKeyOrder(t *testing.T) {
	for typ, p := range locker.EventTypes() {
		v := reflect.New(reflect.TypeOf(p).Elem())
		fill(v.Elem())
		for _, payload := range []any{v.Interface(), protocol.EventPayloads[string(typ)]()} {
			if payload != v.Interface() {
				raw, _ := json.Marshal(v.Interface())
				json.Unmarshal(raw, payload)
			}
			typed, err := json.Marshal(payload)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			json.Unmarshal(typed, &m)
			fromMap, _ := json.Marshal(m)
			if !bytes.Equal(typed, fromMap) || len(m) != len(jsonFields(reflect.TypeOf(payload))) {
				t.Errorf("%s (%T):\n typed %s\n  map  %s", typ, payload, typed, fromMap)
			}
		}
	}
}

// What v1 lockers wrote for the cases an omitted field could change: the
// typed payloads write the same bytes.
func TestEventDataAsV1Wrote(t *testing.T) {
	zero := 0
	until := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		d    locker.EventData
		want string
	}{
		{locker.DoorJammed{Compartment: "A02", Commanded: true, Jams: &zero, LockError: "board 1 not answering"},
			`{"commanded":true,"compartment":"A02","jams":0,"lock_error":"board 1 not answering"}`},
		{locker.DoorJammed{Compartment: "return", Commanded: true}, `{"commanded":true,"compartment":"return"}`},
		{locker.DoorOpened{Compartment: "A01", AtStart: true}, `{"at_start":true,"commanded":false,"compartment":"A01"}`},
		{locker.DoorOpened{Compartment: "A01", Commanded: true}, `{"commanded":true,"compartment":"A01"}`},
		{locker.PickupDenied{Refusal: locker.Refusal{Scanner: "front", Reason: "unknown"}}, `{"reason":"unknown","scanner":"front"}`},
		{locker.PickupDenied{Refusal: locker.Refusal{Scanner: "front", Reason: "locked_out", Until: until}},
			`{"reason":"locked_out","scanner":"front","until":"2026-11-28T10:00:00Z"}`},
		{locker.PickupCompleted{OrderID: "O1", Compartments: []string{"A01"}, Via: "remote"}, `{"compartments":["A01"],"order_id":"O1","via":"remote"}`},
		{locker.DaemonStarted{Version: "v", Compartments: 3}, `{"compartments":3,"doors_open":null,"version":"v"}`},
		{locker.ScannerConnected{ScannerState: locker.ScannerState{Scanner: "front"}}, `{"scanner":"front"}`},
	}
	for _, tt := range tests {
		if got := string(locker.DataOf(tt.d)); got != tt.want {
			t.Errorf("%s: %s, v1 wrote %s", tt.d.EventType(), got, tt.want)
		}
	}
}

// The AsyncAPI contract and the Go types agree: every message and event
// type has a schema, and a schema's properties are exactly its type's
// JSON fields.
func TestAsyncAPIMatchesTypes(t *testing.T) {
	raw, err := os.ReadFile("../../docs/asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		AsyncAPI   string `yaml:"asyncapi"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `yaml:"properties"`
				Required   []string       `yaml:"required"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.AsyncAPI, "3.0") {
		t.Fatalf("asyncapi %q, want 3.0", doc.AsyncAPI)
	}
	types := map[string]any{
		"Message": protocol.Message{}, "SignedEnvelope": protocol.Envelope{}, "Status": protocol.Status{},
		"CentralStatus": protocol.CentralStatus{}, "Event": protocol.Event{}, "Telemetry": protocol.Telemetry{},
		"TelemetryData": protocol.TelemetryData{}, "Item": protocol.Item{}, "Order": protocol.Order{},
		"Conflict": protocol.Conflict{}, "OrdersUpsert": protocol.OrdersUpsert{}, "OrdersCancel": protocol.OrdersCancel{},
		"OrdersSnapshot": protocol.OrdersSnapshot{}, "CmdOpen": protocol.CmdOpen{}, "CmdService": protocol.CmdService{},
		"CmdResync": protocol.CmdResync{}, "CmdBadges": protocol.CmdBadges{}, "CmdConfig": protocol.CmdConfig{}, "CmdUpdate": protocol.CmdUpdate{}, "Manifest": protocol.Manifest{}, "ReqPatron": protocol.ReqPatron{}, "RespPatron": protocol.RespPatron{}, "ReqHold": protocol.ReqHold{}, "RespHold": protocol.RespHold{}, "AckEvt": protocol.AckEvt{}, "AckOrders": protocol.AckOrders{},
		"AckCmd": protocol.AckCmd{}, "Nack": protocol.Nack{},
	}
	for _, typ := range eventTypes() {
		types["event."+typ] = protocol.EventPayloads[typ]()
	}
	for name, v := range types {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("%T has no schema %s", v, name)
			continue
		}
		fields := jsonFields(reflect.TypeOf(v))
		props := slices.Sorted(maps.Keys(s.Properties))
		if want := slices.Sorted(maps.Keys(fields)); !slices.Equal(props, want) {
			t.Errorf("schema %s has %v; %T has %v", name, props, v, want)
		}
		for _, r := range s.Required {
			if fields[r] != "" {
				t.Errorf("schema %s requires %s, which %T may leave out", name, r, v)
			}
		}
	}
	for name := range doc.Components.Schemas {
		if _, ok := types[name]; !ok && !strings.HasPrefix(name, "msg.") {
			t.Errorf("schema %s has no Go type", name)
		}
	}
}

// docs/protocol.md lists every event type and no other, each with the
// fields of its type.
func TestProtocolDocListsEvents(t *testing.T) {
	raw, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(raw)
	start := strings.Index(section, "## Events (up/evt)")
	if start < 0 {
		t.Fatal("no Events section in docs/protocol.md")
	}
	section = section[start+10:]
	section = section[:strings.Index(section, "\n## ")]
	row := regexp.MustCompile("(?m)^\\| (`[a-z_.]+`(?: / `[a-z_.]+`)*) \\| (.*?) \\| .* \\|$")
	tick := regexp.MustCompile("`([a-z_]+)`")
	typeTick := regexp.MustCompile("`([a-z_.]+)`")
	parens := regexp.MustCompile(`\([^()]*\)`)
	documented := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		var fields []string
		for _, f := range tick.FindAllStringSubmatch(parens.ReplaceAllString(m[2], ""), -1) {
			fields = append(fields, f[1])
		}
		slices.Sort(fields)
		for _, typ := range typeTick.FindAllStringSubmatch(m[1], -1) {
			name := typ[1]
			documented[name] = true
			mk, ok := protocol.EventPayloads[name]
			if !ok {
				t.Errorf("docs/protocol.md documents %s, which has no type", name)
				continue
			}
			if want := slices.Sorted(maps.Keys(jsonFields(reflect.TypeOf(mk())))); !slices.Equal(fields, want) {
				t.Errorf("docs/protocol.md: %s has %v, its type %v", name, fields, want)
			}
		}
	}
	for _, typ := range eventTypes() {
		if !documented[typ] {
			t.Errorf("event %s is not in docs/protocol.md", typ)
		}
	}
}
