package fleet

// Remote configuration: the hub keeps each locker's configurations with
// their versions, validates a new one with lockerd's own validator (the
// FILE:LINE errors come back at the hub, before anything is sent), signs
// and sends it (cmd.config), and records what the locker made of it
// (config.applied, config.rejected).

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/protocol"
)

// DocConfig is the kind of a locker's configuration versions.
const DocConfig = "config"

func init() { DocKinds = append(DocKinds, DocConfig) }

// States of a configuration version.
const (
	ConfigSent       = "sent"
	ConfigApplied    = "applied"
	ConfigRejected   = "rejected"    // refused by the locker
	ConfigRolledBack = "rolled_back" // ran, was not healthy, the previous one restored
)

// ConfigVersion is one configuration pushed to a locker.
type ConfigVersion struct {
	ID      string    `json:"id"` // LOCKER/VERSION (zero-padded)
	Locker  string    `json:"locker"`
	Version uint64    `json:"version"`
	Config  string    `json:"config"`
	SHA256  string    `json:"sha256"`
	Pushed  time.Time `json:"pushed"`
	By      string    `json:"by,omitempty"`
	Note    string    `json:"note,omitempty"` // "rollback to 3"
	CmdID   string    `json:"cmd_id,omitempty"`
	State   string    `json:"state"`
	Reasons []string  `json:"reasons,omitempty"`
	At      time.Time `json:"at,omitzero"` // when the locker answered
}

func configDocID(lockerID string, version uint64) string {
	return fmt.Sprintf("%s/%010d", lockerID, version)
}

// ConfigHistory lists a locker's configuration versions, oldest first.
func (s *Service) ConfigHistory(lockerID string) ([]ConfigVersion, error) {
	var out []ConfigVersion
	err := s.cfg.Store.View(func(tx Tx) error {
		all, err := docsOf[ConfigVersion](tx.Docs, DocConfig)
		for _, v := range all {
			if v.Locker == lockerID {
				out = append(out, v)
			}
		}
		return err
	})
	return out, err
}

// PushConfig validates raw as lockerID's configuration and sends it. For
// a locker this hub provisioned, what provisioning gives it (its id,
// keys, broker) is filled in over what raw says, so a push cannot cut
// the locker off.
func (s *Service) PushConfig(lockerID string, raw []byte, by, note string) (ConfigVersion, error) {
	if err := s.cfg.Lockers.RequireServed(lockerID); err != nil {
		return ConfigVersion{}, err
	}
	if len(raw) == 0 || len(raw) > protocol.MaxConfig {
		return ConfigVersion{}, fmt.Errorf("a configuration of 1 to %d bytes", protocol.MaxConfig)
	}
	p := s.cfg.Provisioning
	if p.Validate == nil {
		return ConfigVersion{}, errors.New("this hub has no configuration validator")
	}
	provisioned := false
	var cred Credential
	if err := s.cfg.Store.View(func(tx Tx) error {
		var err error
		provisioned, err = tx.Docs.Doc(DocCredential, lockerID, &cred)
		return err
	}); err != nil {
		return ConfigVersion{}, err
	}
	if provisioned && p.Render != nil {
		var err error
		if raw, err = p.Render(raw, s.provisioned(lockerID, cred.CertSerial != "")); err != nil {
			return ConfigVersion{}, err
		}
	}
	if err := p.Validate(lockerID+".yaml", raw); err != nil {
		return ConfigVersion{}, err
	}
	sum := sha256.Sum256(raw)
	var v ConfigVersion
	err := s.cfg.Store.Update(func(tx Tx) error {
		hist, err := docsOf[ConfigVersion](tx.Docs, DocConfig)
		if err != nil {
			return err
		}
		var last uint64
		for _, x := range hist {
			if x.Locker == lockerID {
				last = max(last, x.Version)
			}
		}
		v = ConfigVersion{Locker: lockerID, Version: last + 1, Config: string(raw), SHA256: hex.EncodeToString(sum[:]),
			Pushed: time.Now().UTC(), By: by, Note: note, State: ConfigSent}
		v.ID = configDocID(lockerID, v.Version)
		return tx.Docs.PutDoc(DocConfig, v.ID, v)
	})
	if err != nil {
		return ConfigVersion{}, err
	}
	cmdID, err := s.cfg.Lockers.Command(lockerID, protocol.TypeCmdConfig, protocol.CmdConfig{Version: v.Version, Config: v.Config, SHA256: v.SHA256})
	if err != nil {
		return v, err
	}
	v.CmdID = cmdID
	err = s.cfg.Store.Update(func(tx Tx) error { return tx.Docs.PutDoc(DocConfig, v.ID, v) })
	s.log.Info("configuration pushed", "locker", lockerID, "version", v.Version, "by", by)
	return v, err
}

// RollbackConfig pushes again the configuration of version to (0: the
// last applied one before the newest applied).
func (s *Service) RollbackConfig(lockerID string, to uint64, by string) (ConfigVersion, error) {
	hist, err := s.ConfigHistory(lockerID)
	if err != nil {
		return ConfigVersion{}, err
	}
	var target *ConfigVersion
	if to != 0 {
		for i := range hist {
			if hist[i].Version == to {
				target = &hist[i]
			}
		}
	} else {
		applied := 0
		for i := len(hist) - 1; i >= 0; i-- {
			if hist[i].State == ConfigApplied {
				if applied++; applied == 2 {
					target = &hist[i]
					break
				}
			}
		}
	}
	if target == nil {
		return ConfigVersion{}, fmt.Errorf("locker %s: no configuration to roll back to (see lockerhub config history)", lockerID)
	}
	return s.PushConfig(lockerID, []byte(target.Config), by, fmt.Sprintf("rollback to %d", target.Version))
}

// configFromEvent records what a locker made of a pushed configuration.
func (s *Service) configFromEvent(tx Tx, lockerID string, e protocol.Event, data any) error {
	var version uint64
	var state string
	var reasons []string
	switch d := data.(type) {
	case *protocol.ConfigApplied:
		version, state = d.Version, ConfigApplied
	case *protocol.ConfigRejected:
		version, state, reasons = d.Version, ConfigRejected, d.Reasons
		if d.RolledBack {
			state = ConfigRolledBack
		}
		if err := s.cfg.Raise(tx.Alarms, tx.Hooks, alarm.Alarm{Locker: lockerID, Type: AlarmConfigRejected,
			Detail: fmt.Sprintf("configuration %d %s: %v", d.Version, map[bool]string{true: "rolled back", false: "refused"}[d.RolledBack], d.Reasons)}); err != nil {
			return err
		}
	default:
		return nil
	}
	var v ConfigVersion
	found, err := tx.Docs.Doc(DocConfig, configDocID(lockerID, version), &v)
	if err != nil || !found {
		return err
	}
	v.State, v.Reasons, v.At = state, reasons, e.TS
	return tx.Docs.PutDoc(DocConfig, v.ID, v)
}

// AlarmConfigRejected: a pushed configuration was refused or rolled back.
const AlarmConfigRejected = "config.rejected"
