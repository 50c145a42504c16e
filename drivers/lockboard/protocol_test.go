package lockboard

import (
	"bytes"
	"errors"
	"testing"
)

func TestFrames(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want []byte
	}{
		{"cu unlock board 1 ch 5", CU{}.Unlock(1, 5), []byte{0x02, 0x01, 0x05, 0x31, 0x03, 0x3C}},
		{"cu status all board 0", CU{}.StatusAll(0), []byte{0x02, 0x00, 0x00, 0x32, 0x03, 0x37}},
		{"8a open board 1 lock 5", EightA{}.Unlock(1, 5), []byte{0x8A, 0x01, 0x05, 0x11, 0x9F}},
		{"8a query all board 1", EightA{}.StatusAll(1), []byte{0x80, 0x01, 0x00, 0x33, 0xB2}},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s: % X, want % X", tc.name, tc.got, tc.want)
		}
	}
}

func TestParseCU(t *testing.T) {
	valid := CUFrame(1, 0, CUStatusAll, 0x11, 0x00, 0x80, 0x01, 0x00, 0x00) // 24 channels: hook 1, 5, 24; item 1
	bad := append([]byte(nil), valid...)
	bad[len(bad)-1] ^= 0xFF
	other := CUFrame(2, 0, CUStatusAll, 0xFF, 0xFF, 0xFF, 0, 0, 0)
	for _, tc := range []struct {
		name string
		buf  []byte
		err  error
	}{
		{"clean", valid, nil},
		{"garbage before", append([]byte{0xFF, 0x02, 0x03, 0x00, 0x02}, valid...), nil},
		{"corrupted then valid", append(bad, valid...), nil},
		{"other board then ours", append(other, valid...), nil},
		{"half a frame", valid[:7], ErrIncomplete},
		{"corrupted only", bad, ErrIncomplete},
		{"other board only", other, ErrIncomplete},
		{"ETX inside data", CUFrame(1, 0, CUStatusAll, 0x03, 0x03), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := CU{}.ParseStatusAll(tc.buf, 1)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && tc.name != "ETX inside data" {
				if len(st.Hook) != 24 || !st.Hook[0] || !st.Hook[4] || !st.Hook[23] || st.Hook[1] || !st.Item[0] || st.Item[1] {
					t.Errorf("status %+v", st)
				}
			}
		})
	}
	open, err := CU{}.ParseUnlock(CUFrame(1, 5, CUUnlock, 0x01), 1, 5)
	if err != nil || !open {
		t.Errorf("unlock reply: %v %v", open, err)
	}
	if _, err := (CU{}).ParseUnlock(CUFrame(1, 6, CUUnlock, 0x01), 1, 5); !errors.Is(err, ErrIncomplete) {
		t.Errorf("reply for another channel accepted: %v", err)
	}
}

func TestParse8A(t *testing.T) {
	st, err := EightA{}.ParseStatusAll(append([]byte{0x33, 0x80}, EAFrame(0x80, 1, 0x01, 0x00, 0x80, 0x33)...), 1)
	if err != nil || len(st.Hook) != 24 || !st.Hook[0] || !st.Hook[23] || st.Hook[5] || st.Item != nil {
		t.Fatalf("status %+v %v", st, err)
	}
	for _, tc := range []struct {
		reply []byte
		open  bool
		err   error
	}{
		{EAFrame(0x8A, 1, 5, 0x11), true, nil},
		{EAFrame(0x8A, 1, 5, 0x00), false, nil},
		{EAFrame(0x8A, 2, 5, 0x11), false, ErrIncomplete},
		{[]byte{0x8A, 1, 5, 0x11, 0x00}, false, ErrIncomplete},
	} {
		open, err := EightA{}.ParseUnlock(tc.reply, 1, 5)
		if open != tc.open || !errors.Is(err, tc.err) {
			t.Errorf("% X: %v %v, want %v %v", tc.reply, open, err, tc.open, tc.err)
		}
	}
}

// FuzzReplies feeds arbitrary line noise to every reply parser: nothing
// panics, and whatever parses is a whole, checksummed frame for the board
// asked about.
func FuzzReplies(f *testing.F) {
	f.Add([]byte{0x02, 0x01, 0x00, 0x32, 0x11, 0x00, 0x03, 0x49})
	f.Add(CUFrame(1, 5, CUUnlock, 0x01))
	f.Add(EAFrame(0x80, 1, 0x01, 0x00, 0x80, 0x33))
	f.Add(EAFrame(0x8A, 1, 5, 0x11))
	f.Add([]byte{0x02, 0x03, 0x02, 0x03})
	f.Fuzz(func(t *testing.T, buf []byte) {
		for _, p := range []Protocol{CU{}, EightA{}} {
			if st, err := p.ParseStatusAll(buf, 1); err == nil {
				if len(st.Hook) == 0 || len(st.Hook)%8 != 0 || len(st.Hook) > 8*maxBitmap {
					t.Fatalf("%s: status of %d channels from % X", p.Name(), len(st.Hook), buf)
				}
			} else if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("%s: unexpected error %v", p.Name(), err)
			}
			if _, err := p.ParseUnlock(buf, 1, 5); err != nil && !errors.Is(err, ErrIncomplete) {
				t.Fatalf("%s: unexpected error %v", p.Name(), err)
			}
		}
	})
}
