package hub_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/api"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/fleet"
	"github.com/lockerd/lockerd/sync/hub/hubclient"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
	"github.com/lockerd/lockerd/sync/protocol"
)

// TestReleaseKey: a hub with a release key signs no manifest itself; it
// takes a binary only with the manifest signed for it with that key (over
// its API too), refusing one signed with another key, one for another
// version or architecture, and a binary that is not the one signed; what
// it sends the lockers is that manifest, byte for byte.
func TestReleaseKey(t *testing.T) {
	url := brokertest.StartEmbedded(t, protocol.DefaultPrefix, "lockerhub")
	_, central, _ := ed25519.GenerateKey(rand.Reader)
	releasePub, releasePriv, _ := ed25519.GenerateKey(rand.Reader)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	h := hubtest.Start(t, hub.Config{Brokers: []string{url}, SigningKey: central, PickupKey: lockertest.Key,
		ReleaseKey: releasePub, ReleasesDir: filepath.Join(t.TempDir(), "releases")})

	bin := []byte("\x7fELF a lockerd build")
	sum := sha256.Sum256(bin)
	manifest := func(key ed25519.PrivateKey, version, arch string, size int64) []byte {
		raw, err := protocol.SealManifest(protocol.Manifest{Version: version, Arch: arch, Size: size,
			SHA256: hex.EncodeToString(sum[:]), Created: time.Now().UTC()}, key)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	if _, err := h.Fleet().AddArtifact("0.17.0", "arm64", bytes.NewReader(bin), false, "t"); err == nil || !strings.Contains(err.Error(), "only releases signed with the release key") {
		t.Fatalf("a hub-signed release on a hub with a release key: %v", err)
	}
	for _, tc := range []struct {
		name     string
		manifest []byte
		binary   []byte
		want     string
	}{
		{"another key", manifest(otherPriv, "0.17.0", "arm64", int64(len(bin))), bin, "does not check with the release key"},
		{"the central's key", manifest(central, "0.17.0", "arm64", int64(len(bin))), bin, "does not check with the release key"},
		{"another version", manifest(releasePriv, "0.17.1", "arm64", int64(len(bin))), bin, "is for 0.17.1/arm64"},
		{"another architecture", manifest(releasePriv, "0.17.0", "armv7", int64(len(bin))), bin, "is for 0.17.0/armv7"},
		{"another binary", manifest(releasePriv, "0.17.0", "arm64", int64(len(bin))), append([]byte("x"), bin...), "is not the one the manifest was signed for"},
		{"not a manifest", []byte(`{"v":1}`), bin, "does not check"},
	} {
		if _, err := h.Fleet().AddSignedArtifact("0.17.0", "arm64", bytes.NewReader(tc.binary), tc.manifest, "t"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if rels, _ := h.Fleet().Releases(); len(rels) != 0 {
		t.Fatalf("a refused binary made a release: %+v", rels)
	}

	// Over the API, as lockerhub release add sends it.
	srv := httptest.NewServer(api.New(api.ForHub(h)))
	defer srv.Close()
	api := hubclient.New(strings.TrimPrefix(srv.URL, "http://"))
	tok, _, err := h.Auth().CreateToken("admin", []string{auth.ScopeAdmin}, "test")
	if err != nil {
		t.Fatal(err)
	}
	api.Token = tok
	// A header that is no manifest, or too long to be one: refused, read
	// no further.
	for _, hdr := range []string{"not base64!", strings.Repeat("QUFB", fleet.MaxManifest)} {
		req, _ := http.NewRequest("PUT", srv.URL+"/v1/releases/0.17.0/arm64", bytes.NewReader(bin))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set(fleet.ManifestHeader, hdr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "want a base64 signed manifest of at most") {
			t.Fatalf("manifest header %.20q: %d %s", hdr, resp.StatusCode, body)
		}
	}
	good := manifest(releasePriv, "0.17.0", "arm64", int64(len(bin)))
	if _, err := api.AddArtifact("0.17.0", "arm64", bytes.NewReader(bin), false); err == nil {
		t.Fatal("an upload without a manifest was taken")
	}
	m, err := api.AddSignedArtifact("0.17.0", "arm64", bytes.NewReader(bin), good)
	if err != nil || m.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("the signed binary: %+v %v", m, err)
	}
	rels, err := h.Fleet().Releases()
	if err != nil || len(rels) != 1 || !bytes.Equal(rels[0].Artifacts["arm64"], good) {
		t.Fatalf("the release does not carry the release key's manifest as signed: %+v %v", rels, err)
	}
	if got, err := protocol.OpenManifest(rels[0].Artifacts["arm64"], []ed25519.PublicKey{central.Public().(ed25519.PublicKey)}); err == nil {
		t.Fatalf("the manifest checks with the central's key: %+v", got)
	}
}
