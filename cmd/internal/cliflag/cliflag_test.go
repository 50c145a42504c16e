package cliflag

import (
	"flag"
	"reflect"
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
