package hub

import "testing"

func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"", "0", "12", "2.15", "1.", ".3", "4294967296.1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCursor(s)
		if err != nil {
			return
		}
		again, err := ParseCursor(c.String())
		if err != nil || again != c {
			t.Fatalf("%q → %v → %q → %v, %v", s, c, c.String(), again, err)
		}
	})
}
