package fleet

// Software releases and their rollout: the hub keeps each release's
// binaries (one per architecture) with a manifest signed by the central's
// key (or, with a release key, signed where that key is kept and only
// checked here), serves them to lockers (resumable, nothing else), and rolls a
// release out in stages, sending cmd.update to each stage's lockers and
// stopping by itself when too many of a stage fail.

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/protocol"
)

// Kinds of the release documents.
const (
	DocRelease = "release"
	DocRollout = "rollout"
)

func init() { DocKinds = append(DocKinds, DocRelease, DocRollout) }

// Architectures a release may carry (make cross names its binaries so).
var Arches = []string{"arm64", "armv7", "armv6", "amd64"}

// MaxBinary bounds an uploaded binary.
const MaxBinary = 128 << 20

// ManifestHeader carries a release-key-signed manifest (base64) with its
// binary's upload; MaxManifest bounds it.
const (
	ManifestHeader = "X-Lockerd-Manifest"
	MaxManifest    = 4 << 10
)

var versionRe = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]{1,40})?$`)

// Release is one version: its artifacts by architecture.
type Release struct {
	ID        string                     `json:"id"` // the version
	Created   time.Time                  `json:"created"`
	By        string                     `json:"by,omitempty"`
	Rollback  bool                       `json:"rollback,omitempty"`
	Artifacts map[string]json.RawMessage `json:"artifacts"` // arch → the manifest, a signed envelope
}

// Release states of a rollout.
const (
	RolloutRunning = "running"
	RolloutHalted  = "halted"
	RolloutDone    = "done"
)

// Rollout sends a release to lockers stage by stage.
type Rollout struct {
	ID        string            `json:"id"` // the version
	Version   string            `json:"version"`
	Stages    [][]string        `json:"stages"`
	Stage     int               `json:"stage"` // the stage being rolled out (0-based)
	MaxFailed float64           `json:"max_failed"`
	State     string            `json:"state"`
	Results   map[string]string `json:"results"` // locker → sent, applied, failed
	Reasons   map[string]string `json:"reasons,omitempty"`
	Started   time.Time         `json:"started"`
	By        string            `json:"by,omitempty"`
	Note      string            `json:"note,omitempty"`
}

// releaseDir is where a release's binaries are kept.
func (s *Service) releaseDir(version string) string {
	return filepath.Join(s.cfg.ReleasesDir, version)
}

// AddArtifact stores one architecture's binary of version (read from r,
// at most MaxBinary) and signs its manifest with the central's key. A hub
// with a release key (Config.ReleaseKey) signs none: AddSignedArtifact.
func (s *Service) AddArtifact(version, arch string, r io.Reader, rollback bool, by string) (protocol.Manifest, error) {
	if s.cfg.ReleaseKey != nil {
		return protocol.Manifest{}, errors.New("this hub takes only releases signed with the release key: sign them where that key is kept (lockerhub release sign) and add them with their manifests")
	}
	return s.addArtifact(version, arch, r, by, func(n int64, sum string) (protocol.Manifest, []byte, error) {
		m := protocol.Manifest{Version: version, Arch: arch, Size: n, SHA256: sum, Rollback: rollback, Created: time.Now().UTC()}
		signed, err := protocol.SealManifest(m, s.cfg.SigningKey)
		return m, signed, err
	})
}

// AddSignedArtifact stores one architecture's binary of version with the
// manifest signed for it with the release key, which it must match: the
// lockers check that signature, not the hub's.
func (s *Service) AddSignedArtifact(version, arch string, r io.Reader, manifest []byte, by string) (protocol.Manifest, error) {
	if s.cfg.ReleaseKey == nil {
		return protocol.Manifest{}, errors.New("this hub has no release key (releases.public_key): it signs the manifests itself (release add without manifests)")
	}
	return s.addArtifact(version, arch, r, by, func(n int64, sum string) (protocol.Manifest, []byte, error) {
		m, err := protocol.OpenManifest(manifest, []ed25519.PublicKey{s.cfg.ReleaseKey})
		switch {
		case err != nil:
			return m, nil, fmt.Errorf("the manifest of %s/%s does not check with the release key: %w", version, arch, err)
		case m.Version != version || m.Arch != arch:
			return m, nil, fmt.Errorf("the manifest is for %s/%s, not %s/%s", m.Version, m.Arch, version, arch)
		case m.Size != n || m.SHA256 != sum:
			return m, nil, fmt.Errorf("the binary (%d bytes, sha256 %.12s…) is not the one the manifest was signed for (%d bytes, %.12s…)", n, sum, m.Size, m.SHA256)
		}
		return m, manifest, nil
	})
}

// addArtifact stores the binary read from r under a temporary name and
// asks sign for its manifest (from its size and SHA-256); only a binary
// with a manifest is kept, and its release records the manifest.
func (s *Service) addArtifact(version, arch string, r io.Reader, by string, sign func(n int64, sum string) (protocol.Manifest, []byte, error)) (protocol.Manifest, error) {
	if !versionRe.MatchString(version) {
		return protocol.Manifest{}, fmt.Errorf("version %q: want MAJOR.MINOR.PATCH (with an optional -suffix)", version)
	}
	if !slices.Contains(Arches, arch) {
		return protocol.Manifest{}, fmt.Errorf("architecture %q: want one of %s", arch, strings.Join(Arches, ", "))
	}
	if s.cfg.ReleasesDir == "" {
		return protocol.Manifest{}, errors.New("this hub keeps no releases (releases.dir)")
	}
	dir := s.releaseDir(version)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return protocol.Manifest{}, err
	}
	tmp, err := os.CreateTemp(dir, "."+arch+".*")
	if err != nil {
		return protocol.Manifest{}, err
	}
	defer os.Remove(tmp.Name())
	n, sum, err := protocol.Digest(io.TeeReader(io.LimitReader(r, MaxBinary+1), tmp))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return protocol.Manifest{}, err
	}
	if n > MaxBinary || n == 0 {
		return protocol.Manifest{}, fmt.Errorf("a binary of 1 byte to %d MB", MaxBinary>>20)
	}
	m, signed, err := sign(n, sum)
	if err != nil {
		return m, err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, arch)); err != nil {
		return protocol.Manifest{}, err
	}
	err = s.cfg.Store.Update(func(tx Tx) error {
		var rel Release
		found, err := tx.Docs.Doc(DocRelease, version, &rel)
		if err != nil {
			return err
		}
		if !found {
			rel = Release{ID: version, Created: time.Now().UTC(), By: by, Artifacts: map[string]json.RawMessage{}}
		}
		rel.Rollback = m.Rollback
		rel.Artifacts[arch] = json.RawMessage(signed)
		return tx.Docs.PutDoc(DocRelease, version, rel)
	})
	s.log.Info("release artifact added", "version", version, "arch", arch, "bytes", n, "sha256", m.SHA256, "release_key", s.cfg.ReleaseKey != nil)
	return m, err
}

// Releases lists the releases, by version id.
func (s *Service) Releases() ([]Release, error) {
	var out []Release
	err := s.cfg.Store.View(func(tx Tx) error {
		var err error
		out, err = docsOf[Release](tx.Docs, DocRelease)
		return err
	})
	return out, err
}

// ArtifactPath is the file of a release's binary (for serving it).
func (s *Service) ArtifactPath(version, arch string) (string, error) {
	if !versionRe.MatchString(version) || !slices.Contains(Arches, arch) || s.cfg.ReleasesDir == "" {
		return "", errors.New("no such release")
	}
	p := filepath.Join(s.releaseDir(version), arch)
	if _, err := os.Stat(p); err != nil {
		return "", errors.New("no such release")
	}
	return p, nil
}

// NewRollout asks for a rollout: explicit lockers, or a share of all.
type NewRollout struct {
	Version   string   `json:"version"`
	Lockers   []string `json:"lockers,omitempty"`
	Percent   int      `json:"percent,omitempty"`    // of the lockers served, when Lockers is empty
	Stages    []int    `json:"stages,omitempty"`     // cumulative percentages of the chosen lockers (default 10, 50, 100)
	MaxFailed float64  `json:"max_failed,omitempty"` // share of a stage that may fail (default 0.2)
}

// StartRollout starts rolling version out; the first stage is sent now,
// the others as each stage ends well (WorkRollouts).
func (s *Service) StartRollout(req NewRollout, by string) (Rollout, error) {
	var rel Release
	found := false
	if err := s.cfg.Store.View(func(tx Tx) error {
		var err error
		found, err = tx.Docs.Doc(DocRelease, req.Version, &rel)
		return err
	}); err != nil {
		return Rollout{}, err
	}
	if !found || len(rel.Artifacts) == 0 {
		return Rollout{}, fmt.Errorf("no release %q (lockerhub release add)", req.Version)
	}
	lockers := req.Lockers
	if len(lockers) == 0 {
		served, err := s.cfg.Lockers.Served()
		if err != nil {
			return Rollout{}, err
		}
		lockers = append(lockers, served...)
		sort.Strings(lockers)
		if req.Percent <= 0 || req.Percent > 100 {
			return Rollout{}, errors.New("give --lockers, or --percent 1..100 of the lockers served")
		}
		lockers = lockers[:max(1, int(math.Ceil(float64(len(lockers))*float64(req.Percent)/100)))]
	}
	for _, id := range lockers {
		if err := s.cfg.Lockers.RequireServed(id); err != nil {
			return Rollout{}, err
		}
	}
	stages := req.Stages
	if len(stages) == 0 {
		stages = []int{10, 50, 100}
	}
	maxFailed := req.MaxFailed
	if maxFailed == 0 {
		maxFailed = 0.2
	}
	if maxFailed < 0 || maxFailed > 1 {
		return Rollout{}, errors.New("max_failed: a share from 0 to 1")
	}
	ro := Rollout{ID: req.Version, Version: req.Version, MaxFailed: maxFailed, State: RolloutRunning,
		Results: map[string]string{}, Reasons: map[string]string{}, Started: time.Now().UTC(), By: by}
	done := 0
	for _, pct := range stages {
		if pct <= 0 || pct > 100 {
			return Rollout{}, errors.New("stages: cumulative percentages 1..100")
		}
		upto := min(len(lockers), max(done+1, int(math.Ceil(float64(len(lockers))*float64(pct)/100))))
		if upto > done {
			ro.Stages = append(ro.Stages, lockers[done:upto])
			done = upto
		}
	}
	if done < len(lockers) {
		ro.Stages = append(ro.Stages, lockers[done:])
	}
	if err := s.cfg.Store.Update(func(tx Tx) error { return tx.Docs.PutDoc(DocRollout, ro.ID, ro) }); err != nil {
		return Rollout{}, err
	}
	return s.sendStage(ro, rel)
}

// sendStage sends cmd.update to every locker of the rollout's stage.
func (s *Service) sendStage(ro Rollout, rel Release) (Rollout, error) {
	if ro.Reasons == nil {
		ro.Reasons = map[string]string{}
	}
	for _, id := range ro.Stages[ro.Stage] {
		if _, err := s.cfg.Lockers.Command(id, protocol.TypeCmdUpdate, protocol.CmdUpdate{Version: rel.ID, Artifacts: rel.Artifacts}); err != nil {
			ro.Results[id], ro.Reasons[id] = "failed", err.Error()
			continue
		}
		ro.Results[id] = "sent"
	}
	err := s.cfg.Store.Update(func(tx Tx) error { return tx.Docs.PutDoc(DocRollout, ro.ID, ro) })
	s.log.Info("rollout stage sent", "version", ro.Version, "stage", ro.Stage+1, "of", len(ro.Stages), "lockers", ro.Stages[ro.Stage])
	return ro, err
}

// Rollouts lists the rollouts.
func (s *Service) Rollouts() ([]Rollout, error) {
	var out []Rollout
	err := s.cfg.Store.View(func(tx Tx) error {
		var err error
		out, err = docsOf[Rollout](tx.Docs, DocRollout)
		return err
	})
	return out, err
}

// WorkRollouts moves every running rollout on: a stage whose lockers all
// answered (update.applied or update.failed) ends; more failures than
// its MaxFailed share halt the rollout, else the next stage is sent.
// The leader runs it on its timer; tests call it.
func (s *Service) WorkRollouts() {
	ros, err := s.Rollouts()
	if err != nil {
		s.log.Warn("rollouts", "err", err)
		return
	}
	for _, ro := range ros {
		if ro.State != RolloutRunning {
			continue
		}
		stage := ro.Stages[ro.Stage]
		failed, answered := 0, 0
		for _, id := range stage {
			switch ro.Results[id] {
			case "failed":
				failed++
				answered++
			case "applied":
				answered++
			}
		}
		if answered < len(stage) {
			continue
		}
		switch {
		case float64(failed)/float64(len(stage)) > ro.MaxFailed:
			ro.State = RolloutHalted
			ro.Note = fmt.Sprintf("stage %d: %d of %d failed (more than %.0f%%): halted", ro.Stage+1, failed, len(stage), ro.MaxFailed*100)
			s.log.Error("rollout halted", "version", ro.Version, "note", ro.Note)
		case ro.Stage+1 == len(ro.Stages):
			ro.State = RolloutDone
		default:
			ro.Stage++
			var rel Release
			if err := s.cfg.Store.View(func(tx Tx) error { _, err := tx.Docs.Doc(DocRelease, ro.Version, &rel); return err }); err != nil {
				s.log.Warn("rollout", "err", err)
				continue
			}
			if _, err := s.sendStage(ro, rel); err != nil {
				s.log.Warn("rollout", "err", err)
			}
			continue
		}
		if err := s.cfg.Store.Update(func(tx Tx) error { return tx.Docs.PutDoc(DocRollout, ro.ID, ro) }); err != nil {
			s.log.Warn("rollout", "err", err)
		}
	}
}

// updateFromEvent records a locker's update.applied or update.failed in
// the rollout of its version.
func (s *Service) updateFromEvent(tx Tx, lockerID string, e protocol.Event, data any) error {
	var version, result, reason string
	switch d := data.(type) {
	case *protocol.UpdateApplied:
		version, result = d.Version, "applied"
	case *protocol.UpdateFailed:
		version, result, reason = d.Version, "failed", strings.Join(d.Reasons, "; ")
		if err := s.cfg.Raise(tx.Alarms, tx.Hooks, alarm.Alarm{Locker: lockerID, Type: AlarmUpdateFailed, Detail: fmt.Sprintf("update to %s failed: %s", d.Version, reason)}); err != nil {
			return err
		}
	default:
		return nil
	}
	var ro Rollout
	found, err := tx.Docs.Doc(DocRollout, version, &ro)
	if err != nil || !found || ro.Results[lockerID] == "" {
		return err
	}
	ro.Results[lockerID] = result
	if reason != "" {
		if ro.Reasons == nil { // (left out of the document while empty)
			ro.Reasons = map[string]string{}
		}
		ro.Reasons[lockerID] = reason
	}
	return tx.Docs.PutDoc(DocRollout, ro.ID, ro)
}

// AlarmUpdateFailed: a locker's software update failed (it runs its
// previous version).
const AlarmUpdateFailed = "update.failed"

// ReleasesDir is where this hub keeps the releases' binaries.
func (s *Service) ReleasesDir() string { return s.cfg.ReleasesDir }
