package main

import (
	"context"
	"log/slog"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"

	"github.com/lockerd/lockerd/locker"
)

// notifyReady tells systemd (Type=notify) that lockerd is serving; outside
// systemd it does nothing.
func notifyReady(log *slog.Logger) {
	if ok, err := sd.SdNotify(false, sd.SdNotifyReady); err != nil {
		log.Warn("systemd notify", "err", err)
	} else if ok {
		log.Info("told systemd: ready")
	}
}

// watchdog feeds systemd's watchdog (WatchdogSec) at half its interval,
// but only while the locker is healthy: a stuck run loop or an unreadable
// store stops the pings, and systemd restarts lockerd.
func watchdog(ctx context.Context, l *locker.Locker, log *slog.Logger) {
	interval, err := sd.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			sd.SdNotify(false, sd.SdNotifyStopping)
			return
		case <-t.C:
		}
		if err := l.Healthy(max(interval, 5*time.Second)); err != nil {
			log.Error("not feeding the systemd watchdog", "err", err)
			continue
		}
		sd.SdNotify(false, sd.SdNotifyWatchdog)
	}
}
