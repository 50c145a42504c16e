package backend

import (
	"log/slog"

	"github.com/lockerd/lockerd/cmd/internal/config"
	"github.com/lockerd/lockerd/drivers/lockboard"
)

func openLockBoard(cfg *config.Config, log *slog.Logger) (*Cabinet, error) {
	l := cfg.Hardware.LockBoard
	proto, err := lockboard.ProtocolByName(l.Protocol)
	if err != nil {
		return nil, err
	}
	w := WiringOf(cfg)
	hw, err := lockboard.New(lockboard.Config{Port: l.Port, Protocol: proto, Baud: l.LockBoardBaud(), Echo: l.Echo,
		ReplyTimeout: l.ReplyTimeout.D(), Quiet: l.Quiet.D(), Poll: l.Poll.D(),
		Locks: w.Locks, Sensors: w.Sensors, Log: log})
	if err != nil {
		return nil, err
	}
	return &Cabinet{Hardware: hw}, nil
}
