// lockerhub keygen and lockerhub release sign: keys and signatures made
// where they are kept, with no hub.

package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lockerd/lockerd/cmd/internal/cliflag"
	"github.com/lockerd/lockerd/cmd/internal/hubconfig"
	"github.com/lockerd/lockerd/sync/hub/fleet"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/protocol"
)

func keygen(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	dir := fs.String("out", ".", "directory for NAME.key (private, hex seed) and NAME.pub (base64 public key)")
	name := fs.String("name", "central", "central (the hub's signing key), release (a release key, kept off the hub) or notice (the key readers' pickup codes are sealed to)")
	if _, err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if *name == "notice" {
		return noticeKeygen(*dir, out)
	}
	if *name != "central" && *name != "release" {
		return fmt.Errorf("-name %q: want central, release or notice", *name)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o750); err != nil {
		return err
	}
	keyPath, pubPath := filepath.Join(*dir, *name+".key"), filepath.Join(*dir, *name+".pub")
	if _, err := os.Stat(keyPath); err == nil {
		return fmt.Errorf("%s exists: not overwriting a signing key", keyPath)
	}
	if err := os.WriteFile(keyPath, []byte(hex.EncodeToString(priv.Seed())+"\n"), 0o600); err != nil {
		return err
	}
	b64 := base64.StdEncoding.EncodeToString(pub)
	if err := os.WriteFile(pubPath, []byte(b64+"\n"), 0o644); err != nil {
		return err
	}
	if *name == "release" {
		fmt.Fprintf(out, "wrote %s and %s\nkeep %s off the hub (sign releases with lockerhub release sign --key %s)\nput this in the hub's config:\n  releases:\n    public_key: %q\nand in each locker's:\n  update:\n    release_key: %q\n",
			keyPath, pubPath, keyPath, keyPath, b64, b64)
		return nil
	}
	fmt.Fprintf(out, "wrote %s and %s\nput this in each locker's config:\n  security:\n    central_public_key: %q\n", keyPath, pubPath, b64)
	return nil
}

// archOf is the architecture a release binary's name ends in (make cross
// names them lockerd-linux-ARCH).
func archOf(file string) (string, error) {
	for _, a := range fleet.Arches {
		if strings.HasSuffix(file, "-"+a) || strings.HasSuffix(file, "_"+a) {
			return a, nil
		}
	}
	return "", fmt.Errorf("%s: its name must end in -arm64, -armv7, -armv6 or -amd64 (as make cross names them)", file)
}

// releaseSign signs each binary's manifest with the release key, where
// that key is kept (not on the hub): FILE.manifest, which release add
// sends with FILE.
func releaseSign(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("release sign", flag.ContinueOnError)
	keyFile := fs.String("key", "release.key", "the release key (lockerhub keygen -name release)")
	version := fs.String("version", "", "the release's version (MAJOR.MINOR.PATCH)")
	rollback := fs.Bool("rollback", false, "the release may replace a newer version (a rollback)")
	nextKeyFile := fs.String("next-key", "", "a rotation: the next release key's public key file (NAME.pub); lockers that take this release's manifest take manifests signed with it from then on")
	files, err := cliflag.Parse(fs, args)
	if err != nil {
		return err
	}
	if *version == "" || len(files) == 0 {
		return errors.New("want: release sign --key release.key --version V [--next-key next.pub] FILE...")
	}
	key, err := hubconfig.ReadSigningKey(*keyFile)
	if err != nil {
		return err
	}
	var nextKey string
	if *nextKeyFile != "" {
		raw, err := os.ReadFile(*nextKeyFile)
		if err != nil {
			return err
		}
		nextKey = strings.TrimSpace(string(raw))
		pub, err := protocol.ParsePublicKey(nextKey)
		if err != nil {
			return fmt.Errorf("--next-key %s: %w (want the NAME.pub lockerhub keygen -name release wrote)", *nextKeyFile, err)
		}
		if pub.Equal(key.Public()) {
			return fmt.Errorf("--next-key %s: that is the release key itself", *nextKeyFile)
		}
	}
	for _, file := range files {
		arch, err := archOf(file)
		if err != nil {
			return err
		}
		n, sum, err := protocol.DigestFile(file)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		m := protocol.Manifest{Version: *version, Arch: arch, Size: n, SHA256: sum, Rollback: *rollback, Created: time.Now().UTC(), NextKey: nextKey}
		signed, err := protocol.SealManifest(m, key)
		if err != nil {
			return err
		}
		if err := os.WriteFile(file+".manifest", signed, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s.manifest: %s %s, %d bytes, sha256 %s\n", file, m.Version, m.Arch, m.Size, m.SHA256)
		if nextKey != "" {
			fmt.Fprintf(out, "  with the next release key %s: lockers that take it take manifests signed with that key too\n", nextKey)
		}
	}
	return nil
}

// noticeKeygen writes notice.key: the X25519 key the hub seals pickup
// codes to until their notices are sent (hex, one line, 0600).
func noticeKeygen(dir string, out io.Writer) error {
	key, err := notice.NewKey()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	path := filepath.Join(dir, "notice.key")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("%w: not overwriting a key (the codes sealed to it could not be opened)", err)
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s\nput this in the hub's config (every replica the same file):\n  notices:\n    key_file: %s\n", path, path)
	return nil
}
