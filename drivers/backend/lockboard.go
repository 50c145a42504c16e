package backend

import (
	"errors"
	"log/slog"

	"github.com/lockerd/lockerd/locker/config"
)

func openLockBoard(cfg *config.Config, log *slog.Logger) (*Cabinet, error) {
	return nil, errors.New("lockboard: not built yet")
}
