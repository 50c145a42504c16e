package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// A store file can be damaged: a power cut on a card that lies about its
// writes, a card wearing out, a file truncated by a full disk or a copy.
// bbolt maps the file into memory and trusts it: a truncated file crashes
// the process inside bbolt (SIGSEGV or SIGBUS) at every start — a crash
// loop under Restart=always — and a damaged page panics wherever it is
// read. So a store is checked before it is opened: Preflight reads the two
// meta pages and the file's length without mapping anything, and DeepCheck
// runs bbolt's consistency check in a separate process (CheckInChild),
// where a crash is a finding, not the end of lockerd.

// ErrDamaged is wrapped by every finding that a store file is damaged.
var ErrDamaged = errors.New("store damaged")

// ErrInUse: another process holds the store open (a running lockerd).
var ErrInUse = errors.New("store in use")

// ErrCheckTimeout: the deep check did not finish in its time bound (a big
// store on a slow card); nothing was found.
var ErrCheckTimeout = errors.New("store check did not finish in time")

func damaged(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrDamaged, fmt.Sprintf(format, args...))
}

// bbolt's file format (version 2): a 16-byte page header, then the meta.
const (
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	pageHeaderSize  = 16
	metaSumLen      = 56 // magic .. txid: what the checksum covers
	pgidNoFreelist  = ^uint64(0)
	minPageSize     = 512
	maxPageSize     = 1 << 20
	metaPagesNeeded = 4 // two metas, the freelist, the root bucket
)

type meta struct {
	pageSize       uint32
	root, freelist uint64
	pgid, txid     uint64
}

// readMeta validates the meta at off in f.
func readMeta(f *os.File, off int64) (meta, error) {
	buf := make([]byte, pageHeaderSize+metaSumLen+8)
	if _, err := f.ReadAt(buf, off); err != nil {
		return meta{}, err
	}
	m := buf[pageHeaderSize:]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != boltMagic {
		return meta{}, errors.New("no bbolt magic")
	}
	if v := le.Uint32(m[4:]); v != boltVersion {
		return meta{}, fmt.Errorf("bbolt file version %d", v)
	}
	h := fnv.New64a()
	h.Write(m[:metaSumLen])
	if h.Sum64() != le.Uint64(m[metaSumLen:]) {
		return meta{}, errors.New("meta checksum mismatch")
	}
	return meta{pageSize: le.Uint32(m[8:]), root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]),
		pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, nil
}

// Preflight checks a store file without mapping it: nil if it does not
// exist (a new store is made) or looks whole; an ErrDamaged finding if it
// is empty, shorter than its own meta page says, or has no valid meta.
func Preflight(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	size := info.Size()
	if size == 0 {
		return damaged("%s is empty (0 bytes): not a new store, a lost one", path)
	}
	m0, err0 := readMeta(f, 0)
	var best meta
	var err1 error
	switch {
	case err0 == nil:
		best = m0
		if m1, err := readMeta(f, int64(m0.pageSize)); err == nil && m1.pageSize == m0.pageSize && m1.txid > best.txid {
			best = m1
		} else {
			err1 = err
		}
	default:
		// Meta 0 unreadable: look for meta 1 at the usual page sizes.
		err1 = errors.New("no meta page")
		for ps := int64(minPageSize); ps <= maxPageSize; ps *= 2 {
			if m1, err := readMeta(f, ps); err == nil && int64(m1.pageSize) == ps {
				best, err1 = m1, nil
				break
			}
		}
		if err1 != nil {
			return damaged("%s has no valid meta page (meta 0: %v); it is not a whole bbolt file", path, err0)
		}
	}
	_ = err1 // one valid meta is enough: bbolt keeps two for exactly this
	ps := int64(best.pageSize)
	if ps < minPageSize || ps > maxPageSize || ps&(ps-1) != 0 {
		return damaged("%s: page size %d in its meta page", path, ps)
	}
	if best.pgid < metaPagesNeeded || best.root >= best.pgid || best.freelist != pgidNoFreelist && best.freelist >= best.pgid {
		return damaged("%s: meta page points outside the file's pages (root %d, freelist %d, pages %d)", path, best.root, best.freelist, best.pgid)
	}
	if need := int64(best.pgid) * ps; size < need {
		return damaged("%s is truncated: %d bytes, its meta page needs %d (%d pages of %d)", path, size, need, best.pgid, ps)
	}
	return nil
}

// DeepCheck maps the store read-only and runs bbolt's consistency check
// over every page, then reads every key and value of every bucket. A
// damaged file can crash the process doing this: run it only in a
// process of its own (CheckInChild).
func DeepCheck(path string) error {
	if err := Preflight(path); err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		// Not damage: another process (a running lockerd) holds it.
		return fmt.Errorf("store %s is locked by another process (is lockerd running on it?): %w", path, err)
	}
	if err != nil {
		return damaged("%s: %v", path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		var found []string
		for err := range tx.Check() {
			if len(found) < 5 {
				found = append(found, err.Error())
			}
		}
		if len(found) > 0 {
			return damaged("%s: %s", path, strings.Join(found, "; "))
		}
		if tx.Bucket(bMeta) == nil {
			return damaged("%s: not a lockerd store (no meta bucket)", path)
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error { return nil })
		})
	})
}

// ChildCheckArg is the first argument that makes a lockerd or lockerctl
// process run DeepCheck on the path that follows, and exit.
const ChildCheckArg = "__store-check"

// Exit codes of the child check.
const (
	childOK      = 0
	childDamaged = 3
)

// RunChildCheck runs the child check if args (os.Args) ask for it, and
// exits; otherwise it returns. Both binaries call it first thing.
func RunChildCheck(args []string) {
	if len(args) != 3 || args[1] != ChildCheckArg {
		return
	}
	if err := DeepCheck(args[2]); err != nil {
		fmt.Fprintln(os.Stdout, strings.TrimPrefix(err.Error(), ErrDamaged.Error()+": "))
		if errors.Is(err, ErrDamaged) {
			os.Exit(childDamaged)
		}
		os.Exit(1)
	}
	os.Exit(childOK)
}

// Check runs Preflight, then DeepCheck in a child process (this program,
// through RunChildCheck) bounded by timeout. It returns nil, an ErrDamaged
// finding (a child that crashed found damage too), ErrCheckTimeout, or
// another error (the check could not run).
func Check(ctx context.Context, path string, timeout time.Duration) error {
	// A store another process holds open is in use, not damaged: never
	// judge (let alone move aside) a live store.
	if busy, err := InUse(path); err != nil {
		return err
	} else if busy {
		return fmt.Errorf("%w: %s is locked by another process (is another lockerd running on it?)", ErrInUse, path)
	}
	if err := Preflight(path); err != nil {
		return err
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("store check: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, self, ChildCheckArg, path)
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%w (%v)", ErrCheckTimeout, timeout)
	}
	if err == nil {
		return nil
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return fmt.Errorf("store check: %w", err)
	}
	detail := strings.TrimSpace(out.String())
	if len(detail) > 600 {
		detail = detail[:600] + "…"
	}
	switch exit.ExitCode() {
	case childDamaged:
		return fmt.Errorf("%w: %s", ErrDamaged, detail)
	case 1: // the check could not run (the store locked by another process)
		return fmt.Errorf("store check: %s", firstLine(detail))
	}
	// A crash (a signal, or a Go panic's exit status 2) reading the file.
	return damaged("%s: reading it crashed the check (%v): %s", path, exit, firstLine(detail))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// DamagedSuffix marks a store moved aside: FILE.damaged-20261128T052000Z.
const DamagedSuffix = ".damaged-"

// RecoveredSuffix is added to a moved-aside store once lockerctl store
// recover has copied what it could out of it.
const RecoveredSuffix = ".recovered"

// MoveAside renames a damaged store out of the way, with the time, and
// returns the new name. The store path is then free, but lockerd will not
// make a new store there while the moved-aside file awaits recovery
// (PendingDamaged).
func MoveAside(path string, now time.Time) (string, error) {
	aside := path + DamagedSuffix + now.UTC().Format("20060102T150405Z")
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("move damaged store aside: %w", err)
	}
	return aside, nil
}

// PendingDamaged returns the newest store moved aside from path that has
// not been recovered yet.
func PendingDamaged(path string) (string, bool) {
	matches, _ := filepath.Glob(path + DamagedSuffix + "*")
	var pending []string
	for _, m := range matches {
		if !strings.HasSuffix(m, RecoveredSuffix) {
			pending = append(pending, m)
		}
	}
	if len(pending) == 0 {
		return "", false
	}
	sort.Strings(pending)
	return pending[len(pending)-1], true
}
