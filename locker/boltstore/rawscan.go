package boltstore

import (
	"encoding/binary"
	"io"
	"os"
)

// rawRecord is a key and value found on a leaf page.
type rawRecord struct{ k, v []byte }

// rawLeaves reads every leaf page of a bbolt file without bbolt and
// returns the records on them: what Recover falls back on when a bucket's
// tree cannot be walked (its root or a branch page is damaged or cut off
// by a truncation). It sees freed pages too, so it may return older
// versions of a record and records deleted since: the caller picks.
func rawLeaves(path string, pageSize int) ([]rawRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := info.Size()
	var out []rawRecord
	hdr := make([]byte, pageHeaderSize)
	le := binary.LittleEndian
	for id := int64(2); id*int64(pageSize)+pageHeaderSize <= size; {
		off := id * int64(pageSize)
		if _, err := f.ReadAt(hdr, off); err != nil && err != io.EOF {
			return out, err
		}
		flags, count, overflow := le.Uint16(hdr[8:]), int(le.Uint16(hdr[10:])), int64(le.Uint32(hdr[12:]))
		span := (overflow + 1) * int64(pageSize)
		if le.Uint64(hdr) != uint64(id) || flags != 0x02 || count == 0 || overflow > 1<<16 || off+span > size ||
			pageHeaderSize+count*16 > int(span) {
			id++
			continue
		}
		buf := make([]byte, span)
		if _, err := f.ReadAt(buf, off); err != nil {
			id++
			continue
		}
		for i := 0; i < count; i++ {
			e := pageHeaderSize + i*16
			eflags, pos, ksize, vsize := le.Uint32(buf[e:]), int(le.Uint32(buf[e+4:])), int(le.Uint32(buf[e+8:])), int(le.Uint32(buf[e+12:]))
			start := e + pos
			if eflags&0x01 != 0 || pos < 0 || ksize <= 0 || vsize < 0 || start < 0 || start+ksize+vsize > len(buf) {
				continue // a nested bucket, or garbage
			}
			out = append(out, rawRecord{append([]byte(nil), buf[start:start+ksize]...), append([]byte(nil), buf[start+ksize:start+ksize+vsize]...)})
		}
		id += overflow + 1
	}
	return out, nil
}
