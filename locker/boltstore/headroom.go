package boltstore

import (
	"math"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Headroom is how many more bytes the store can take: the room left on its
// filesystem or under the process's file-size limit (RLIMIT_FSIZE),
// whichever is smaller, plus what the file already holds unused — pages
// past bbolt's high-water mark (the file grows in steps) and free pages
// it reuses before growing.
func (s *Store) Headroom() (int64, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(s.path), &fs); err != nil {
		return 0, err
	}
	info, err := os.Stat(s.path)
	if err != nil {
		return 0, err
	}
	file := info.Size()
	room := int64(fs.Bavail) * int64(fs.Bsize)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &lim); err == nil && lim.Cur != unix.RLIM_INFINITY && lim.Cur < math.MaxInt64 {
		room = min(room, int64(lim.Cur)-file)
	}
	unused := max(file-s.Size(), 0) + int64(s.db.Stats().FreeAlloc)
	return max(room, 0) + unused, nil
}
