package pinname

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Pin
		err  string
	}{
		{in: "GPIO17", want: Pin{Kind: Line, Line: "GPIO17", Bus: -1}},
		{in: "17", want: Pin{Kind: Line, Line: "GPIO17", Bus: -1}},
		{in: "mcp23017@0x20/A3", want: Pin{Kind: MCP23017, Bus: -1, Addr: 0x20, Index: 3}},
		{in: "MCP23017@3:0x27/b7", want: Pin{Kind: MCP23017, Bus: 3, Addr: 0x27, Index: 15}},
		{in: "pcf8574@0x21/P5", want: Pin{Kind: PCF8574, Bus: -1, Addr: 0x21, Index: 5}},
		{in: "pcf8574@33/5", want: Pin{Kind: PCF8574, Bus: -1, Addr: 0x21, Index: 5}},
		{in: "B1/L5", want: Pin{Kind: Board, Bus: -1, Addr: 1, Index: 5, Func: 'L'}},
		{in: "b2/s12", want: Pin{Kind: Board, Bus: -1, Addr: 2, Index: 12, Func: 'S'}},
		{in: "B0/I1", want: Pin{Kind: Board, Bus: -1, Addr: 0, Index: 1, Func: 'I'}},
		{in: "mcp23017@0x20/C1", err: "A0..A7"},
		{in: "mcp23017@0x20/A8", err: "A0..A7"},
		{in: "pcf8574@0x21/P8", err: "P0..P7"},
		{in: "mcp23017@0x99/A1", err: "out of range"},
		{in: "mcp@0x20/A1", err: "expander pin like"},
		{in: "B1/L0", err: "channel 0"},
		{in: "B300/L1", err: "board address"},
		{in: "9999", err: "out of range"},
		{in: "GPIO 17", err: "not a pin name"},
		{in: "", err: "not a pin name"},
	} {
		got, err := Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %+v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestKeySameForSynonyms(t *testing.T) {
	for _, pair := range [][2]string{{"GPIO4", "4"}, {"mcp23017@0x20/A3", "MCP23017@0x20/a3"}, {"pcf8574@0x21/P5", "pcf8574@33/5"}, {"B1/L5", "b1/l5"}} {
		a, _ := Parse(pair[0])
		b, _ := Parse(pair[1])
		if a.Key() != b.Key() {
			t.Errorf("%s and %s: keys %q and %q differ", pair[0], pair[1], a.Key(), b.Key())
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"GPIO17", "17", "mcp23017@0x20/A3", "pcf8574@1:0x21/P5", "B1/L5", "@", "B/L"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		// A name that parses has a canonical key that parses to itself.
		if p.Kind == MCP23017 || p.Kind == PCF8574 {
			if p.Index < 0 || p.Index > 15 || p.Addr < 3 || p.Addr > 0x77 {
				t.Fatalf("%q parsed out of range: %+v", s, p)
			}
		}
		_ = p.Key()
		_ = p.Device()
	})
}
