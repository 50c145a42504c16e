package main

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lockerd/lockerd/locker/kiosk"
)

// TestVoicegen runs the generator with espeak-ng on the kiosk's
// catalogues into a temporary directory: every voiced key and character
// of both languages becomes a WAV file of 11025 Hz, 8-bit mono with
// speech in it, and the manifest records the same texts as the one
// embedded in lockerd (what make voice last wrote).
func TestVoicegen(t *testing.T) {
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Fatal("espeak-ng is not installed: make test installs it (Debian: apt-get install espeak-ng)")
	}
	dir := t.TempDir()
	src := "../../../locker/kiosk/assets"
	if err := os.MkdirAll(filepath.Join(dir, "i18n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"en", "zh-CN"} {
		raw, err := os.ReadFile(filepath.Join(src, "i18n", lang+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "i18n", lang+".json"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := run(dir); err != nil {
		t.Fatal(err)
	}
	read := func(path string) kiosk.VoiceManifest {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var m kiosk.VoiceManifest
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	made, committed := read(filepath.Join(dir, "voice", "manifest.json")), read(filepath.Join(src, "voice", "manifest.json"))
	for lang, clips := range made.Langs {
		if len(clips) != len(kiosk.VoiceKeys)+len(kiosk.VoiceChars) {
			t.Errorf("%s: %d clips", lang, len(clips))
		}
		for key, c := range clips {
			if committed.Langs[lang][key] != c {
				t.Errorf("%s %s: %+v, the committed manifest has %+v (run make voice)", lang, key, c, committed.Langs[lang][key])
			}
			wav, err := os.ReadFile(filepath.Join(dir, "voice", c.File))
			if err != nil || len(wav) < 44 {
				t.Fatalf("%s: %v", c.File, err)
			}
			rate, bits := binary.LittleEndian.Uint32(wav[24:28]), binary.LittleEndian.Uint16(wav[34:36])
			if rate != 11025 || bits != 8 {
				t.Errorf("%s: %d Hz, %d bits", c.File, rate, bits)
			}
			loud := 0
			for _, s := range wav[44:] {
				if s > 128+16 || s < 128-16 {
					loud++
				}
			}
			if loud < 100 {
				t.Errorf("%s: no speech in it (%d loud samples of %d)", c.File, loud, len(wav)-44)
			}
		}
	}
}
