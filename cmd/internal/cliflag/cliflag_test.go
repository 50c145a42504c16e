package cliflag

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		args   []string
		pos    []string
		reason string
		items  int
	}{
		{[]string{"A01", "--reason", "x"}, []string{"A01"}, "x", 0},
		{[]string{"--reason", "x", "A01"}, []string{"A01"}, "x", 0},
		{[]string{"a", "--item", "1:T", "b", "--item", "2"}, []string{"a", "b"}, "", 2},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		reason := fs.String("reason", "", "")
		var its Items
		fs.Var(&its, "item", "")
		pos, err := Parse(fs, tt.args)
		if err != nil || !reflect.DeepEqual(pos, tt.pos) || *reason != tt.reason || len(its) != tt.items {
			t.Errorf("%v: pos %v reason %q items %v err %v", tt.args, pos, *reason, its, err)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var its Items
	fs.Var(&its, "item", "")
	if _, err := Parse(fs, []string{"--item", ":T"}); err == nil {
		t.Error("item without barcode accepted")
	}
}

func TestGlobals(t *testing.T) {
	tests := []struct {
		args []string
		rest []string
		hub  string
		json bool
	}{
		{[]string{"-hub", "h:1", "lockers"}, []string{"lockers"}, "h:1", false},
		{[]string{"lockers", "-hub", "h:1"}, []string{"lockers"}, "h:1", false},
		{[]string{"--hub=h:1", "order", "add", "--locker", "x"}, []string{"order", "add", "--locker", "x"}, "h:1", false},
		{[]string{"order", "add", "--hub", "h:1", "--locker", "x", "-json"}, []string{"order", "add", "--locker", "x"}, "h:1", true},
		{[]string{"events", "--", "-hub", "x"}, []string{"events", "--", "-hub", "x"}, "", false},
		{[]string{"scan", "-", "--reason", "x"}, []string{"scan", "-", "--reason", "x"}, "", false},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("g", flag.ContinueOnError)
		hub := fs.String("hub", "", "")
		js := fs.Bool("json", false, "")
		rest, err := Globals(fs, tt.args)
		if err != nil || !reflect.DeepEqual(rest, tt.rest) || *hub != tt.hub || *js != tt.json {
			t.Errorf("%v: rest %v hub %q json %v err %v", tt.args, rest, *hub, *js, err)
		}
	}
	fs := flag.NewFlagSet("g", flag.ContinueOnError)
	fs.String("hub", "", "")
	if _, err := Globals(fs, []string{"lockers", "-hub"}); err == nil {
		t.Error("a global flag without its value was accepted")
	}
}

// FuzzGlobals: any argument list either fails with an error or comes back
// with the global flags taken out and every other argument kept, in order.
func FuzzGlobals(f *testing.F) {
	f.Add("-hub\x00h:1\x00lockers")
	f.Add("lockers\x00--hub=x\x00--\x00-hub")
	f.Add("-\x00--\x00---hub\x00-json=maybe")
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		fs := flag.NewFlagSet("g", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.String("hub", "", "")
		fs.Bool("json", false, "")
		rest, err := Globals(fs, args)
		if err != nil {
			return
		}
		if len(rest) > len(args) {
			t.Fatalf("%q: more arguments back (%q)", args, rest)
		}
		i := 0
		for _, a := range args {
			if i < len(rest) && rest[i] == a {
				i++
			}
		}
		if i != len(rest) {
			t.Fatalf("%q: %q is not what remains in order", args, rest)
		}
	})
}
