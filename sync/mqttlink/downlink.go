package mqttlink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/protocol"
)

// toCore turns a wire order into the core's, hashing a plaintext code on
// receipt (it is never stored).
func (k *Link) toCore(o protocol.Order) (locker.Order, error) {
	hash := o.CodeHash
	if o.Code != "" {
		if hash != "" {
			return locker.Order{}, errors.New("both code and code_hash given")
		}
		h, err := k.l.HashCode(o.Code)
		if err != nil {
			return locker.Order{}, err
		}
		hash = h
	}
	items := make([]locker.Item, len(o.Items))
	for i, it := range o.Items {
		items[i] = locker.Item{Barcode: it.Barcode, Title: it.Title}
	}
	return locker.Order{ID: o.ID, Rev: o.Rev, State: locker.OrderState(o.State), Size: locker.Size(o.Size),
		Assigned: o.Compartment, Items: items, Accessible: o.Accessible, CodeHash: hash, ExpiresAt: o.ExpiresAt,
		PatronHash: o.PatronHash, Delivery: o.Delivery}, nil
}

func (k *Link) toCoreAll(in []protocol.Order) ([]locker.Order, []locker.Conflict) {
	var out []locker.Order
	var bad []locker.Conflict
	for _, o := range in {
		co, err := k.toCore(o)
		if err != nil {
			bad = append(bad, locker.Conflict{OrderID: o.ID, Reason: err.Error()})
			continue
		}
		out = append(out, co)
	}
	return out, bad
}

func ackOrders(res locker.OrdersResult, bad []locker.Conflict) protocol.AckOrders {
	conv := func(cs []locker.Conflict) []protocol.Conflict {
		var out []protocol.Conflict
		for _, c := range cs {
			out = append(out, protocol.Conflict{OrderID: c.OrderID, Reason: c.Reason, State: string(c.State)})
		}
		return out
	}
	return protocol.AckOrders{Rev: res.Rev, Applied: res.Applied, Stale: res.Stale, AppliedCount: res.AppliedCount,
		StaleCount: res.StaleCount, Pending: res.Pending,
		Conflicts: conv(res.Conflicts), Rejected: conv(append(bad, res.Rejected...))}
}

func (k *Link) handleOrders(m protocol.Message) {
	var res locker.OrdersResult
	var bad []locker.Conflict
	var err error
	switch m.Type {
	case protocol.TypeOrdersUpsert:
		var d protocol.OrdersUpsert
		if err := protocol.DecodeData(m, &d); err != nil {
			k.nack(m.ID, err)
			return
		}
		var orders []locker.Order
		orders, bad = k.toCoreAll(d.Orders)
		res, err = k.l.ApplyOrders(orders)
	case protocol.TypeOrdersCancel:
		var d protocol.OrdersCancel
		if err := protocol.DecodeData(m, &d); err != nil {
			k.nack(m.ID, err)
			return
		}
		res, err = k.l.CancelOrders(d.OrderIDs, d.Rev)
	case protocol.TypeOrdersSnapshot:
		var d protocol.OrdersSnapshot
		if err := protocol.DecodeData(m, &d); err != nil {
			k.nack(m.ID, err)
			return
		}
		var orders []locker.Order
		orders, bad = k.toCoreAll(d.Orders)
		res, err = k.stageSnapshot(d, orders)
	}
	if err != nil {
		// A store failure: no ack, so the central library sends again.
		k.log.Error("orders not applied", "type", m.Type, "id", m.ID, "err", err)
		k.nack(m.ID, fmt.Errorf("not applied: %w", err))
		return
	}
	k.log.Info("orders", "type", m.Type, "id", m.ID, "applied", res.AppliedCount, "stale", res.StaleCount,
		"conflicts", len(res.Conflicts), "rejected", len(res.Rejected)+len(bad), "pending", res.Pending, "orders_rev", res.Rev)
	k.reply(protocol.TypeAckOrders, m.ID, ackOrders(res, bad))
}

// handleCmd runs a remote command at most once, and never after its exp.
func (k *Link) handleCmd(ctx context.Context, m protocol.Message) {
	ack := func(status, detail string) {
		k.log.Info("command", "type", m.Type, "id", m.ID, "status", status, "detail", detail)
		k.reply(protocol.TypeAckCmd, m.ID, protocol.AckCmd{Status: status, Detail: detail})
	}
	if m.Exp == nil {
		ack(protocol.CmdRejected, "exp is required on commands")
		return
	}
	dup, err := k.cfg.State.ClaimCommand(m.ID, k.now())
	if err != nil {
		k.log.Error("command id not recorded", "id", m.ID, "err", err)
		ack(protocol.CmdRejected, "store error")
		return
	}
	if dup {
		ack(protocol.CmdDuplicate, "already handled")
		return
	}
	if err := k.l.CheckCommandTime(*m.Exp); err != nil {
		if errors.Is(err, locker.ErrCommandExpired) {
			ack(protocol.CmdExpired, err.Error())
		} else {
			ack(protocol.CmdRejected, err.Error())
		}
		return
	}
	switch m.Type {
	case protocol.TypeCmdOpen:
		var d protocol.CmdOpen
		if err := protocol.DecodeData(m, &d); err != nil {
			ack(protocol.CmdRejected, err.Error())
			return
		}
		res, err := k.l.RemoteOpen(ctx, d.Compartment, d.Reason)
		switch {
		case err != nil:
			ack(protocol.CmdRejected, err.Error())
		case res.Outcome == locker.OutcomeOpened || res.Outcome == locker.OutcomeMaintOpen:
			ack(protocol.CmdDone, string(res.Outcome))
		default:
			ack(protocol.CmdRejected, string(res.Outcome)+" "+res.Reason)
		}
	case protocol.TypeCmdService:
		var d protocol.CmdService
		if err := protocol.DecodeData(m, &d); err != nil {
			ack(protocol.CmdRejected, err.Error())
			return
		}
		if err := k.l.SetService(d.Compartment, d.InService, "remote"); err != nil {
			ack(protocol.CmdRejected, err.Error())
			return
		}
		ack(protocol.CmdDone, "")
	case protocol.TypeCmdResync:
		var d protocol.CmdResync
		if err := protocol.DecodeData(m, &d); err != nil {
			ack(protocol.CmdRejected, err.Error())
			return
		}
		st, err := k.l.SyncState()
		if err != nil {
			ack(protocol.CmdRejected, "store error")
			return
		}
		from := max(d.FromSeq, st.AckedSeq+1)
		k.mu.Lock()
		k.cursor = from - 1
		k.mu.Unlock()
		k.wake()
		ack(protocol.CmdDone, fmt.Sprintf("resending from seq %d (events up to %d were acked and removed)", from, st.AckedSeq))
	case protocol.TypeCmdPing:
		ack(protocol.CmdDone, "pong")
	case protocol.TypeCmdConfig:
		var d protocol.CmdConfig
		if err := protocol.DecodeData(m, &d); err != nil {
			ack(protocol.CmdRejected, err.Error())
			return
		}
		sum := sha256.Sum256([]byte(d.Config))
		switch {
		case k.cfg.Configurer == nil:
			ack(protocol.CmdRejected, "this locker takes no configuration from the central")
			return
		case d.Version == 0 || len(d.Config) == 0 || len(d.Config) > protocol.MaxConfig:
			ack(protocol.CmdRejected, fmt.Sprintf("want a version and a configuration of 1 to %d bytes", protocol.MaxConfig))
			return
		case hex.EncodeToString(sum[:]) != d.SHA256:
			ack(protocol.CmdRejected, "the configuration does not match its sha256")
			return
		}
		detail, err := k.cfg.Configurer.ApplyConfig(d.Version, []byte(d.Config))
		if err != nil {
			ack(protocol.CmdRejected, err.Error())
			return
		}
		ack(protocol.CmdDone, detail)
	case protocol.TypeCmdUpdate:
		var d protocol.CmdUpdate
		if err := protocol.DecodeData(m, &d); err != nil {
			ack(protocol.CmdRejected, err.Error())
			return
		}
		if k.cfg.Updater == nil {
			ack(protocol.CmdRejected, "this locker takes no software update from the central (no update section)")
			return
		}
		detail, err := k.cfg.Updater.Update(d.Version, d.Artifacts)
		if err != nil {
			ack(protocol.CmdRejected, err.Error())
			return
		}
		ack(protocol.CmdDone, detail)
	case protocol.TypeCmdBadges:
		var d protocol.CmdBadges
		if err := protocol.DecodeData(m, &d); err != nil {
			ack(protocol.CmdRejected, err.Error())
			return
		}
		if len(d.Add)+len(d.Revoke) > protocol.MaxBadgesPerCmd {
			ack(protocol.CmdRejected, fmt.Sprintf("at most %d badges a command", protocol.MaxBadgesPerCmd))
			return
		}
		ch := locker.BadgeChange{}
		for _, b := range d.Add {
			ch.Add = append(ch.Add, locker.Badge{Name: b.Name, Hash: b.Hash, Role: locker.BadgeRole(b.Role)})
		}
		for _, r := range d.Revoke {
			if r.Hash != "" {
				ch.RevokeHashes = append(ch.RevokeHashes, r.Hash)
			}
			if r.Name != "" {
				ch.RevokeNames = append(ch.RevokeNames, r.Name)
			}
		}
		n, err := k.l.ChangeBadges(ch)
		if err != nil {
			ack(protocol.CmdRejected, err.Error())
			return
		}
		ack(protocol.CmdDone, fmt.Sprintf("%d badges changed", n))
	}
}
