package serialscan

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitter(t *testing.T) {
	tests := []struct {
		name    string
		chunks  []string
		want    []string
		flush   string // expected from Flush after the chunks ("" = nothing)
		dropped int
	}{
		{"CR", []string{"ABCD\r"}, []string{"ABCD"}, "", 0},
		{"LF", []string{"ABCD\n"}, []string{"ABCD"}, "", 0},
		{"CRLF is one end", []string{"ABCD\r\nEFGH\r\n"}, []string{"ABCD", "EFGH"}, "", 0},
		{"split across reads", []string{"AB", "CD\r", "\nEF"}, []string{"ABCD"}, "EF", 0},
		{"no suffix: idle flush", []string{"K7Q2M9"}, nil, "K7Q2M9", 0},
		{"non-printable dropped", []string{"\x02K7\x00Q2\x1bM9\xff\x03\r"}, []string{"K7Q2M9"}, "", 0},
		{"empty lines ignored", []string{"\r\n\r\n\n"}, nil, "", 0},
		{"overlong dropped whole", []string{strings.Repeat("9", MaxLine+1) + "\rOK12\r"}, []string{"OK12"}, "", 1},
		{"exactly the limit kept", []string{strings.Repeat("9", MaxLine) + "\r"}, []string{strings.Repeat("9", MaxLine)}, "", 0},
		{"overlong without suffix", []string{strings.Repeat("9", MaxLine+5)}, nil, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Splitter
			var got []string
			for _, c := range tt.chunks {
				got = append(got, s.Feed([]byte(c))...)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("lines %q, want %q", got, tt.want)
			}
			fl, ok := s.Flush()
			if fl != tt.flush || ok != (tt.flush != "") {
				t.Fatalf("flush %q %v, want %q", fl, ok, tt.flush)
			}
			if s.Dropped != tt.dropped {
				t.Fatalf("dropped %d, want %d", s.Dropped, tt.dropped)
			}
		})
	}
}

func FuzzSplitter(f *testing.F) {
	f.Add([]byte("K7Q2M9\r\n"), 3)
	f.Add([]byte("\x00\xff]Q1abc\rdef"), 1)
	f.Add([]byte(strings.Repeat("A", 300)+"\n"), 7)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		var s Splitter
		var lines []string
		// Feeding in two pieces gives the same lines as feeding at once.
		if cut < 0 {
			cut = -cut
		}
		cut %= len(data) + 1
		lines = append(lines, s.Feed(data[:cut])...)
		lines = append(lines, s.Feed(data[cut:])...)
		if l, ok := s.Flush(); ok {
			lines = append(lines, l)
		}
		var whole Splitter
		want := whole.Feed(data)
		if l, ok := whole.Flush(); ok {
			want = append(want, l)
		}
		if !reflect.DeepEqual(lines, want) {
			t.Fatalf("split feed %q != whole feed %q", lines, want)
		}
		for _, l := range lines {
			if l == "" || len(l) > MaxLine {
				t.Fatalf("bad line length %d", len(l))
			}
			for i := 0; i < len(l); i++ {
				if l[i] < 0x20 || l[i] > 0x7e {
					t.Fatalf("non-printable byte %#x in line", l[i])
				}
			}
		}
	})
}
