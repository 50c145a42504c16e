// Command voicegen makes the kiosk's spoken prompts (make voice): each
// voiced key of the kiosk's catalogues (locker/kiosk/assets/i18n), and the
// letters and digits door names are spelt with, spoken by espeak-ng in
// the key's language and stored as small WAV files (11025 Hz, 8-bit mono)
// under locker/kiosk/assets/voice, which lockerd embeds: no network and no
// speech service on the Pi. voice/manifest.json records the text each
// file was made from; the kiosk's tests fail when a catalogue text
// changed and its prompt was not made again.
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"

	"github.com/lockerd/lockerd/locker/kiosk"
)

// espeak-ng's voice for each kiosk language.
var voices = map[string]string{"en": "en-us", "zh-CN": "cmn"}

func main() {
	dir := flag.String("assets", "locker/kiosk/assets", "the kiosk's assets directory")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "voicegen:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		return errors.New("espeak-ng not found: install it (Debian: apt-get install espeak-ng)")
	}
	man := kiosk.VoiceManifest{Version: 1, Langs: map[string]map[string]kiosk.VoiceClip{}}
	out := filepath.Join(dir, "voice")
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	for lang, voice := range voices {
		raw, err := os.ReadFile(filepath.Join(dir, "i18n", lang+".json"))
		if err != nil {
			return err
		}
		var cat map[string]string
		if err := json.Unmarshal(raw, &cat); err != nil {
			return fmt.Errorf("%s.json: %w", lang, err)
		}
		texts := map[string]string{}
		for _, k := range kiosk.VoiceKeys {
			text, ok := cat[k]
			if !ok {
				return fmt.Errorf("%s.json has no %q to speak", lang, k)
			}
			texts[k] = text
		}
		for _, c := range kiosk.VoiceChars {
			texts["char."+string(c)] = string(c)
		}
		keys := make([]string, 0, len(texts))
		for k := range texts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		man.Langs[lang] = map[string]kiosk.VoiceClip{}
		if err := os.MkdirAll(filepath.Join(out, lang), 0o755); err != nil {
			return err
		}
		for _, k := range keys {
			file := lang + "/" + k + ".wav"
			if err := speak(voice, texts[k], filepath.Join(out, file)); err != nil {
				return fmt.Errorf("%s %s: %w", lang, k, err)
			}
			sum := sha256.Sum256([]byte(texts[k]))
			man.Langs[lang][k] = kiosk.VoiceClip{File: file, TextSHA256: hex.EncodeToString(sum[:])}
		}
	}
	raw, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "manifest.json"), append(raw, '\n'), 0o644)
}

// speak has espeak-ng say text into a WAV file, then makes it small: 22050
// Hz 16-bit becomes 11025 Hz 8-bit (speech stays clear; a tenth of the
// size of the original per second).
func speak(voice, text, path string) error {
	tmp, err := os.CreateTemp("", "voicegen-*.wav")
	if err != nil {
		return err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("espeak-ng", "-v", voice, "-s", "150", "-w", tmp.Name(), text)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("espeak-ng: %v: %s", err, msg)
	}
	raw, err := os.ReadFile(tmp.Name())
	if err != nil {
		return err
	}
	pcm, rate, err := readWAV(raw)
	if err != nil {
		return err
	}
	return os.WriteFile(path, smallWAV(trim(pcm, rate), rate), 0o644)
}

// trim cuts the silence espeak-ng leaves before and after the speech,
// keeping 50 ms of it at each end.
func trim(pcm []int16, rate int) []int16 {
	const quiet = 300 // of 32767
	loud := func(v int16) bool { return v > quiet || v < -quiet }
	first, last := 0, len(pcm)
	for first < last && !loud(pcm[first]) {
		first++
	}
	for last > first && !loud(pcm[last-1]) {
		last--
	}
	pad := rate / 20
	return pcm[max(first-pad, 0):min(last+pad, len(pcm))]
}

// readWAV returns the 16-bit mono samples of an espeak-ng WAV file.
func readWAV(b []byte) ([]int16, int, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, errors.New("not a WAV file")
	}
	var rate int
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:p+8]))
		body := b[p+8:]
		if size > len(body) {
			size = len(body) // espeak-ng's streamed length
		}
		switch id {
		case "fmt ":
			if size < 16 || binary.LittleEndian.Uint16(body[0:2]) != 1 || binary.LittleEndian.Uint16(body[2:4]) != 1 || binary.LittleEndian.Uint16(body[14:16]) != 16 {
				return nil, 0, errors.New("want 16-bit mono PCM")
			}
			rate = int(binary.LittleEndian.Uint32(body[4:8]))
		case "data":
			if rate == 0 {
				return nil, 0, errors.New("data before fmt")
			}
			out := make([]int16, size/2)
			for i := range out {
				out[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			return out, rate, nil
		}
		p += 8 + size + size%2
	}
	return nil, 0, errors.New("no data chunk")
}

// smallWAV halves the rate (each pair of samples averaged) and stores
// 8-bit unsigned samples.
func smallWAV(pcm []int16, rate int) []byte {
	n := len(pcm) / 2
	data := make([]byte, n)
	for i := 0; i < n; i++ {
		v := (int(pcm[2*i]) + int(pcm[2*i+1])) / 2
		data[i] = byte((v >> 8) + 128)
	}
	rate /= 2
	h := make([]byte, 44)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+n))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], 1) // mono
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(rate)) // bytes per second
	binary.LittleEndian.PutUint16(h[32:], 1)            // block align
	binary.LittleEndian.PutUint16(h[34:], 8)            // bits
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(n))
	return append(h, data...)
}
