package hubbolt

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/lockerd/lockerd/locker/boltkv"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/hub/stock"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/protocol"
)

// boltStore is the hub's hub.Store in one bbolt file.
type boltStore struct{ db *bolt.DB }

var _ hub.Store = (*boltStore)(nil)

var (
	bLockers    = []byte("lockers")
	bOrders     = []byte("orders") // locker \x00 order id → hub.OrderRec
	bEvents     = []byte("events") // locker \x00 epoch(4) seq(8) → protocol.Event
	bStores     = []byte("stores") // locker \x00 store id → hub.StoreRec
	bAlarms     = []byte("alarms") // seq → alarm.Alarm
	bKnown      = []byte("known")  // locker id → KnownLocker: the lockers this hub serves
	bMeta       = []byte("meta")
	kSchema     = []byte("schema")
	bPending    = []byte("pending")            // locker \x00 rev \x00 part → hub.PendingMsg (order changes not yet acked)
	bRevs       = []byte("revs")               // locker → last order rev issued
	bCmds       = []byte("cmds")               // command id → hub.CmdRec
	bLeases     = []byte("leases")             // name → lease
	bCirc       = []byte("circ")               // id → circulation.CircRec (the ILS transactions)
	bCircOpen   = []byte("circ_open")          // id → nothing: the open ones (circulation.CircRec.Open)
	bTokens     = []byte("tokens")             // id → auth.Token
	bAlarmsOpen = []byte("alarms_open")        // alarm.Alarm.Key → seq of the latest unresolved one
	bWebhooks   = []byte("webhooks")           // id → webhook.Webhook
	bUsers      = []byte("users")              // name → auth.User
	bDeliveries = []byte("deliveries")         // id → webhook.Delivery
	bDelivPend  = []byte("deliveries_pending") // id → nothing: the pending ones
	bAudit      = []byte("audit")              // seq → auth.AuditRec
	bNotices    = []byte("notices")            // id → notice.Notice
	bNoticeKeys = []byte("notice_keys")        // notice.Notice.Key → id: each queued once
	bNoticePend = []byte("notices_pending")    // id → nothing: the pending and sending ones
	bStock      = []byte("stock")              // barcode → stock.Item
)

// schemaVersion 2 keys events by store (epoch): version 1 keyed them by
// locker and seq alone, and is migrated at open.
const schemaVersion = "2"

// Open opens (or creates) the hub's bbolt store at path, migrating an
// older schema.
func Open(path string) (hub.Store, error) { return openBolt(path) }

func openBolt(path string) (*boltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("hub store %s is locked by another process: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("hub store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bLockers, bOrders, bEvents, bPending, bRevs, bCmds, bStores, bAlarms, bMeta, bKnown, bLeases, bCirc, bCircOpen, bTokens, bAudit, bAlarmsOpen, bWebhooks, bDeliveries, bDelivPend, bUsers, bNotices, bNoticeKeys, bNoticePend, bStock} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := migrate(tx); err != nil {
			return err
		}
		return adoptLockers(tx)
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &boltStore{db: db}, nil
}

func (s *boltStore) View(fn func(hub.Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}.all()) })
}

func (s *boltStore) Update(fn func(hub.Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}.all()) })
}

func (s *boltStore) Close() error { return s.db.Close() }

// boltTx is a hub.Tx on one bbolt transaction.
type boltTx struct{ tx *bolt.Tx }

func (t boltTx) b(name []byte) *bolt.Bucket { return t.tx.Bucket(name) }

// all is t as every capability's part of a transaction.
func (t boltTx) all() hub.Tx {
	return hub.Tx{Lockers: t, Events: t, Orders: t, Commands: t, Alarms: t, Circ: t, Auth: t, Webhooks: t, Notices: t, Stock: t, Docs: t, Leases: t}
}

// lkey is a key under a locker: its id, a zero byte, the rest.
func lkey(locker string, rest ...[]byte) []byte {
	k := append([]byte(locker), 0)
	for _, r := range rest {
		k = append(k, r...)
	}
	return k
}

// evKey is the key of event seq of the store of epoch epoch.
func evKey(locker string, epoch uint32, seq uint64) []byte {
	k := lkey(locker, binary.BigEndian.AppendUint32(nil, epoch))
	return binary.BigEndian.AppendUint64(k, seq)
}

func (t boltTx) Locker(id string) (hub.LockerInfo, error) {
	li := hub.LockerInfo{ID: id}
	_, err := boltkv.GetJSON(t.b(bLockers), []byte(id), &li)
	return li, err
}

func (t boltTx) PutLocker(li hub.LockerInfo) error {
	return boltkv.PutJSON(t.b(bLockers), []byte(li.ID), li)
}

func (t boltTx) Lockers() ([]hub.LockerInfo, error) {
	var out []hub.LockerInfo
	err := t.b(bLockers).ForEach(func(_, v []byte) error {
		var li hub.LockerInfo
		if err := json.Unmarshal(v, &li); err != nil {
			return err
		}
		out = append(out, li)
		return nil
	})
	return out, err
}

func (t boltTx) Known(id string) (bool, error) { return t.b(bKnown).Get([]byte(id)) != nil, nil }

func (t boltTx) PutKnown(k hub.KnownLocker) error {
	return boltkv.PutJSON(t.b(bKnown), []byte(k.ID), k)
}

func (t boltTx) KnownLockers() ([]hub.KnownLocker, error) {
	var out []hub.KnownLocker
	err := t.b(bKnown).ForEach(func(_, v []byte) error {
		var k hub.KnownLocker
		if err := json.Unmarshal(v, &k); err != nil {
			return err
		}
		out = append(out, k)
		return nil
	})
	return out, err
}

func (t boltTx) StoreRec(lockerID, store string) (rec hub.StoreRec, found bool, err error) {
	found, err = boltkv.GetJSON(t.b(bStores), lkey(lockerID, []byte(store)), &rec)
	return rec, found, err
}

func (t boltTx) PutStoreRec(lockerID string, rec hub.StoreRec) error {
	return boltkv.PutJSON(t.b(bStores), lkey(lockerID, []byte(rec.Store)), rec)
}

func (t boltTx) StoreRecs(lockerID string) ([]hub.StoreRec, error) {
	var out []hub.StoreRec
	prefix := lkey(lockerID)
	c := t.b(bStores).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var rec hub.StoreRec
		if err := json.Unmarshal(v, &rec); err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Epoch < out[j].Epoch })
	return out, nil
}

func (t boltTx) KnownAmong(ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, id := range ids {
		if ok, _ := t.Known(id); ok {
			out[id] = true
		}
	}
	return out, nil
}

func (t boltTx) LockersOf(ids []string) (map[string]hub.LockerInfo, error) {
	out := make(map[string]hub.LockerInfo, len(ids))
	for _, id := range ids {
		li, err := t.Locker(id)
		if err != nil {
			return nil, err
		}
		out[id] = li
	}
	return out, nil
}

func (t boltTx) StoreRecsOf(keys []hub.StoreKey) (map[hub.StoreKey]hub.StoreRec, error) {
	out := map[hub.StoreKey]hub.StoreRec{}
	for _, k := range keys {
		rec, found, err := t.StoreRec(k.Locker, k.Store)
		if err != nil {
			return nil, err
		}
		if found {
			out[k] = rec
		}
	}
	return out, nil
}

func (t boltTx) EventsAt(keys []hub.EventKey) (map[hub.EventKey]protocol.Event, error) {
	out := map[hub.EventKey]protocol.Event{}
	for _, k := range keys {
		e, found, err := t.Event(k.Locker, k.Epoch, k.Seq)
		if err != nil {
			return nil, err
		}
		if found {
			out[k] = e
		}
	}
	return out, nil
}

func (t boltTx) HasEvent(lockerID string, epoch uint32, seq uint64) (bool, error) {
	return t.b(bEvents).Get(evKey(lockerID, epoch, seq)) != nil, nil
}

func (t boltTx) Event(lockerID string, epoch uint32, seq uint64) (e protocol.Event, found bool, err error) {
	found, err = boltkv.GetJSON(t.b(bEvents), evKey(lockerID, epoch, seq), &e)
	return e, found, err
}

func (t boltTx) PutEvent(lockerID string, epoch uint32, e protocol.Event) error {
	return boltkv.PutJSON(t.b(bEvents), evKey(lockerID, epoch, e.Seq), e)
}

func (t boltTx) Events(lockerID string, after hub.Cursor, limit int) ([]hub.StoredEvent, error) {
	var out []hub.StoredEvent
	prefix := lkey(lockerID)
	c := t.b(bEvents).Cursor()
	from := evKey(lockerID, after.Epoch, after.Seq+1)
	if after.Seq == math.MaxUint64 {
		from = evKey(lockerID, after.Epoch+1, 0)
	}
	for k, v := c.Seek(from); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var e hub.StoredEvent
		if err := json.Unmarshal(v, &e.Event); err != nil {
			return nil, err
		}
		e.Epoch = binary.BigEndian.Uint32(k[len(prefix):])
		out = append(out, e)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

func (t boltTx) Order(lockerID, orderID string) (o hub.OrderRec, found bool, err error) {
	found, err = boltkv.GetJSON(t.b(bOrders), lkey(lockerID, []byte(orderID)), &o)
	return o, found, err
}

func (t boltTx) PutOrder(o hub.OrderRec) error {
	return boltkv.PutJSON(t.b(bOrders), lkey(o.Locker, []byte(o.ID)), o)
}

func (t boltTx) Orders(lockerID string) ([]hub.OrderRec, error) {
	var out []hub.OrderRec
	prefix := lkey(lockerID)
	c := t.b(bOrders).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var o hub.OrderRec
		if err := json.Unmarshal(v, &o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rev < out[j].Rev })
	return out, nil
}

func (t boltTx) NextRev(lockerID string) (uint64, error) {
	b := t.b(bRevs)
	rev := boltkv.U64(b.Get([]byte(lockerID))) + 1
	return rev, b.Put([]byte(lockerID), boltkv.U64Key(rev))
}

func (t boltTx) LastRev(lockerID string) (uint64, error) {
	return boltkv.U64(t.b(bRevs).Get([]byte(lockerID))), nil
}

func (t boltTx) SetLastRev(lockerID string, rev uint64) error {
	return t.b(bRevs).Put([]byte(lockerID), boltkv.U64Key(rev))
}

func (t boltTx) PutPending(lockerID string, rev uint64, part int, p hub.PendingMsg) error {
	p.Rev, p.Part = rev, part
	return boltkv.PutJSON(t.b(bPending), lkey(lockerID, boltkv.U64Key(rev), boltkv.U64Key(uint64(part))), p)
}

func (t boltTx) PrunePending(lockerID string, rev uint64) ([]hub.PendingMsg, error) {
	b := t.b(bPending)
	prefix := lkey(lockerID)
	var drop [][]byte
	var rest []hub.PendingMsg
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if boltkv.U64(k[len(prefix):len(prefix)+8]) <= rev {
			drop = append(drop, bytes.Clone(k))
			continue
		}
		var p hub.PendingMsg
		if err := json.Unmarshal(v, &p); err != nil {
			return nil, err
		}
		// Records from before Rev and Part were kept: the key tells.
		p.Rev, p.Part = boltkv.U64(k[len(prefix):len(prefix)+8]), int(boltkv.U64(k[len(prefix)+8:]))
		rest = append(rest, p)
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return nil, err
		}
	}
	return rest, nil
}

func (t boltTx) DropPending(lockerID, msgID string) (bool, error) {
	b := t.b(bPending)
	prefix := lkey(lockerID)
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var p hub.PendingMsg
		if err := json.Unmarshal(v, &p); err != nil {
			return false, err
		}
		if p.ID != "" && p.ID == msgID {
			return true, b.Delete(bytes.Clone(k))
		}
	}
	return false, nil
}

func (t boltTx) Command(id string) (rec hub.CmdRec, found bool, err error) {
	found, err = boltkv.GetJSON(t.b(bCmds), []byte(id), &rec)
	return rec, found, err
}

func (t boltTx) PutCommand(rec hub.CmdRec) error {
	return boltkv.PutJSON(t.b(bCmds), []byte(rec.ID), rec)
}

func (t boltTx) Commands() ([]hub.CmdRec, error) {
	var out []hub.CmdRec
	err := t.b(bCmds).ForEach(func(_, v []byte) error {
		var rec hub.CmdRec
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		out = append(out, rec)
		return nil
	})
	return out, err
}

func (t boltTx) AddAlarm(a alarm.Alarm) (alarm.Alarm, error) {
	n, err := t.b(bAlarms).NextSequence()
	if err != nil {
		return a, err
	}
	a.Seq = n
	return a, t.PutAlarm(a)
}

func (t boltTx) PutAlarm(a alarm.Alarm) error {
	if a.Seq == 0 {
		return errors.New("alarm without its seq")
	}
	if err := boltkv.PutJSON(t.b(bAlarms), boltkv.U64Key(a.Seq), a); err != nil {
		return err
	}
	idx := t.b(bAlarmsOpen)
	key := []byte(a.Key())
	if a.Unresolved() {
		return idx.Put(key, boltkv.U64Key(a.Seq))
	}
	if cur := idx.Get(key); cur != nil && string(cur) == string(boltkv.U64Key(a.Seq)) {
		return idx.Delete(key)
	}
	return nil
}

func (t boltTx) OpenAlarm(key string) (a alarm.Alarm, found bool, err error) {
	seq := t.b(bAlarmsOpen).Get([]byte(key))
	if seq == nil {
		return a, false, nil
	}
	found, err = boltkv.GetJSON(t.b(bAlarms), seq, &a)
	return a, found && a.Unresolved(), err
}

func (t boltTx) OpenAlarms() ([]alarm.Alarm, error) {
	var out []alarm.Alarm
	err := t.b(bAlarmsOpen).ForEach(func(_, seq []byte) error {
		var a alarm.Alarm
		found, err := boltkv.GetJSON(t.b(bAlarms), seq, &a)
		if err == nil && found && a.Unresolved() {
			out = append(out, a)
		}
		return err
	})
	slices.SortFunc(out, func(x, y alarm.Alarm) int { return cmp.Compare(x.Seq, y.Seq) })
	return out, err
}

func (t boltTx) Alarms(after uint64) ([]alarm.Alarm, error) {
	var out []alarm.Alarm
	c := t.b(bAlarms).Cursor()
	for k, v := c.Seek(boltkv.U64Key(after + 1)); k != nil; k, v = c.Next() {
		var a alarm.Alarm
		if err := json.Unmarshal(v, &a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (t boltTx) AddCirc(c circulation.CircRec) (circulation.CircRec, error) {
	n, err := t.b(bCirc).NextSequence()
	if err != nil {
		return c, err
	}
	c.ID = n
	return c, t.PutCirc(c)
}

func (t boltTx) PutCirc(c circulation.CircRec) error {
	if c.ID == 0 {
		return errors.New("circulation transaction without its id")
	}
	k := boltkv.U64Key(c.ID)
	if err := boltkv.PutJSON(t.b(bCirc), k, c); err != nil {
		return err
	}
	if c.Open() {
		return t.b(bCircOpen).Put(k, nil)
	}
	return t.b(bCircOpen).Delete(k)
}

func (t boltTx) Circ(id uint64) (c circulation.CircRec, found bool, err error) {
	found, err = boltkv.GetJSON(t.b(bCirc), boltkv.U64Key(id), &c)
	return c, found, err
}

func (t boltTx) Circs(after uint64, limit int) ([]circulation.CircRec, error) {
	var out []circulation.CircRec
	c := t.b(bCirc).Cursor()
	for k, v := c.Seek(boltkv.U64Key(after + 1)); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
		var rec circulation.CircRec
		if err := json.Unmarshal(v, &rec); err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

func (t boltTx) OpenCircs(limit int) ([]circulation.CircRec, error) {
	var out []circulation.CircRec
	c := t.b(bCircOpen).Cursor()
	for k, _ := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, _ = c.Next() {
		var rec circulation.CircRec
		found, err := boltkv.GetJSON(t.b(bCirc), k, &rec)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, rec)
		}
	}
	return out, nil
}

func (t boltTx) PutToken(tok auth.Token) error {
	return boltkv.PutJSON(t.b(bTokens), []byte(tok.ID), tok)
}

func (t boltTx) Token(id string) (tok auth.Token, found bool, err error) {
	found, err = boltkv.GetJSON(t.b(bTokens), []byte(id), &tok)
	return tok, found, err
}

func (t boltTx) Tokens() ([]auth.Token, error) {
	var out []auth.Token
	err := t.b(bTokens).ForEach(func(_, v []byte) error {
		var tok auth.Token
		if err := json.Unmarshal(v, &tok); err != nil {
			return err
		}
		out = append(out, tok)
		return nil
	})
	return out, err
}

func (t boltTx) AddAudit(a auth.AuditRec) (auth.AuditRec, error) {
	b := t.b(bAudit)
	n, err := b.NextSequence()
	if err != nil {
		return a, err
	}
	a.Seq = n
	return a, boltkv.PutJSON(b, boltkv.U64Key(n), a)
}

func (t boltTx) Audit(after uint64, limit int) ([]auth.AuditRec, error) {
	var out []auth.AuditRec
	c := t.b(bAudit).Cursor()
	for k, v := c.Seek(boltkv.U64Key(after + 1)); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
		var a auth.AuditRec
		if err := json.Unmarshal(v, &a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (t boltTx) PutWebhook(w webhook.Webhook) error {
	return boltkv.PutJSON(t.b(bWebhooks), []byte(w.ID), w)
}

func (t boltTx) Webhooks() ([]webhook.Webhook, error) {
	var out []webhook.Webhook
	err := t.b(bWebhooks).ForEach(func(_, v []byte) error {
		var w webhook.Webhook
		if err := json.Unmarshal(v, &w); err != nil {
			return err
		}
		out = append(out, w)
		return nil
	})
	return out, err
}

func (t boltTx) AddDelivery(d webhook.Delivery) (webhook.Delivery, error) {
	n, err := t.b(bDeliveries).NextSequence()
	if err != nil {
		return d, err
	}
	d.ID = n
	return d, t.PutDelivery(d)
}

func (t boltTx) PutDelivery(d webhook.Delivery) error {
	if d.ID == 0 {
		return errors.New("delivery without its id")
	}
	k := boltkv.U64Key(d.ID)
	if err := boltkv.PutJSON(t.b(bDeliveries), k, d); err != nil {
		return err
	}
	if d.State == webhook.DeliveryPending {
		return t.b(bDelivPend).Put(k, nil)
	}
	return t.b(bDelivPend).Delete(k)
}

func (t boltTx) Delivery(id uint64) (d webhook.Delivery, found bool, err error) {
	found, err = boltkv.GetJSON(t.b(bDeliveries), boltkv.U64Key(id), &d)
	return d, found, err
}

func (t boltTx) PendingDeliveries(limit int) ([]webhook.Delivery, error) {
	var out []webhook.Delivery
	c := t.b(bDelivPend).Cursor()
	for k, _ := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, _ = c.Next() {
		var d webhook.Delivery
		found, err := boltkv.GetJSON(t.b(bDeliveries), k, &d)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, d)
		}
	}
	return out, nil
}

func (t boltTx) Deliveries(after uint64, limit int) ([]webhook.Delivery, error) {
	var out []webhook.Delivery
	c := t.b(bDeliveries).Cursor()
	for k, v := c.Seek(boltkv.U64Key(after + 1)); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
		var d webhook.Delivery
		if err := json.Unmarshal(v, &d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func (t boltTx) AddNotice(n notice.Notice) (notice.Notice, bool, error) {
	if id := t.b(bNoticeKeys).Get([]byte(n.Key)); id != nil {
		var there notice.Notice
		_, err := boltkv.GetJSON(t.b(bNotices), id, &there)
		return there, false, err
	}
	id, err := t.b(bNotices).NextSequence()
	if err != nil {
		return n, false, err
	}
	n.ID = id
	if err := t.b(bNoticeKeys).Put([]byte(n.Key), boltkv.U64Key(id)); err != nil {
		return n, false, err
	}
	return n, true, t.PutNotice(n)
}

func (t boltTx) PutNotice(n notice.Notice) error {
	if n.ID == 0 {
		return errors.New("notice without its id")
	}
	k := boltkv.U64Key(n.ID)
	if err := boltkv.PutJSON(t.b(bNotices), k, n); err != nil {
		return err
	}
	if n.State == notice.StatePending || n.State == notice.StateSending {
		return t.b(bNoticePend).Put(k, nil)
	}
	return t.b(bNoticePend).Delete(k)
}

func (t boltTx) Notice(id uint64) (n notice.Notice, found bool, err error) {
	found, err = boltkv.GetJSON(t.b(bNotices), boltkv.U64Key(id), &n)
	return n, found, err
}

func (t boltTx) PendingNotices(limit int) ([]notice.Notice, error) {
	var out []notice.Notice
	c := t.b(bNoticePend).Cursor()
	for k, _ := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, _ = c.Next() {
		var n notice.Notice
		found, err := boltkv.GetJSON(t.b(bNotices), k, &n)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, n)
		}
	}
	return out, nil
}

func (t boltTx) Notices(after uint64, limit int) ([]notice.Notice, error) {
	var out []notice.Notice
	c := t.b(bNotices).Cursor()
	for k, v := c.Seek(boltkv.U64Key(after + 1)); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
		var n notice.Notice
		if err := json.Unmarshal(v, &n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// OrderNotices reads an order's notices by their keys (order/kind/channel).
func (t boltTx) OrderNotices(order string) ([]notice.Notice, error) {
	var out []notice.Notice
	prefix := []byte(order + "/")
	c := t.b(bNoticeKeys).Cursor()
	for k, id := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, id = c.Next() {
		var n notice.Notice
		found, err := boltkv.GetJSON(t.b(bNotices), id, &n)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b notice.Notice) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func (t boltTx) PutUser(u auth.User) error { return boltkv.PutJSON(t.b(bUsers), []byte(u.Name), u) }

func (t boltTx) User(name string) (u auth.User, found bool, err error) {
	found, err = boltkv.GetJSON(t.b(bUsers), []byte(name), &u)
	return u, found, err
}

func (t boltTx) Users() ([]auth.User, error) {
	var out []auth.User
	err := t.b(bUsers).ForEach(func(_, v []byte) error {
		var u auth.User
		if err := json.Unmarshal(v, &u); err != nil {
			return err
		}
		out = append(out, u)
		return nil
	})
	return out, err
}

func docBucket(kind string) []byte { return []byte("doc:" + kind) }

func (t boltTx) PutDoc(kind, id string, doc any) error {
	b, err := t.tx.CreateBucketIfNotExists(docBucket(kind))
	if err != nil {
		return err
	}
	return boltkv.PutJSON(b, []byte(id), doc)
}

func (t boltTx) Doc(kind, id string, into any) (bool, error) {
	b := t.b(docBucket(kind))
	if b == nil {
		return false, nil
	}
	return boltkv.GetJSON(b, []byte(id), into)
}

func (t boltTx) Docs(kind string) ([]json.RawMessage, error) {
	b := t.b(docBucket(kind))
	if b == nil {
		return nil, nil
	}
	var out []json.RawMessage
	err := b.ForEach(func(_, v []byte) error {
		out = append(out, append(json.RawMessage(nil), v...))
		return nil
	})
	return out, err
}

// lease is a Claim's record.
type lease struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

func (t boltTx) Claim(name, holder string, ttl time.Duration) (bool, error) {
	b := t.b(bLeases)
	var l lease
	if _, err := boltkv.GetJSON(b, []byte(name), &l); err != nil {
		return false, err
	}
	now := time.Now()
	if l.Holder != "" && l.Holder != holder && !now.After(l.Expires) {
		return false, nil
	}
	return true, boltkv.PutJSON(b, []byte(name), lease{Holder: holder, Expires: now.Add(ttl)})
}

func (t boltTx) Release(name, holder string) error {
	b := t.b(bLeases)
	var l lease
	if found, err := boltkv.GetJSON(b, []byte(name), &l); err != nil || !found || l.Holder != holder {
		return err
	}
	return b.Delete([]byte(name))
}

func (t boltTx) Held(prefix string) ([]hub.Lease, error) {
	var out []hub.Lease
	now := time.Now()
	c := t.b(bLeases).Cursor()
	for k, v := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, v = c.Next() {
		var l lease
		if err := json.Unmarshal(v, &l); err != nil {
			return nil, fmt.Errorf("lease %q: %w", k, err)
		}
		if !now.After(l.Expires) {
			out = append(out, hub.Lease{Name: string(k), Holder: l.Holder})
		}
	}
	return out, nil
}

// migrate brings a version 1 store to version 2: its events (keyed by
// locker and seq) become epoch 1 of the locker's store "" (lockers before
// store identities), with the locker's mark as that store's.
func migrate(tx *bolt.Tx) error {
	m := tx.Bucket(bMeta)
	switch v := string(m.Get(kSchema)); v {
	case schemaVersion:
		return nil
	case "":
	default:
		return fmt.Errorf("hub store schema %q; this lockerhub reads %s", v, schemaVersion)
	}
	eb := tx.Bucket(bEvents)
	type kv struct{ k, v []byte }
	var old []kv
	err := eb.ForEach(func(k, v []byte) error {
		if i := bytes.IndexByte(k, 0); i >= 0 && len(k)-i-1 == 8 {
			old = append(old, kv{append([]byte(nil), k...), append([]byte(nil), v...)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range old {
		i := bytes.IndexByte(e.k, 0)
		if err := eb.Delete(e.k); err != nil {
			return err
		}
		if err := eb.Put(evKey(string(e.k[:i]), 1, boltkv.U64(e.k[i+1:])), e.v); err != nil {
			return err
		}
	}
	var lockers []hub.LockerInfo
	err = tx.Bucket(bLockers).ForEach(func(k, v []byte) error {
		var li hub.LockerInfo
		if err := json.Unmarshal(v, &li); err != nil || li.Events == 0 {
			return err
		}
		lockers = append(lockers, li)
		return nil
	})
	if err != nil {
		return err
	}
	for _, li := range lockers {
		if err := boltkv.PutJSON(tx.Bucket(bStores), lkey(li.ID, nil), hub.StoreRec{Epoch: 1, Acked: li.Acked, Events: li.Events, LastSeen: li.LastSeen}); err != nil {
			return err
		}
		li.Epochs = 1
		if err := (boltTx{tx}).PutLocker(li); err != nil {
			return err
		}
	}
	return m.Put(kSchema, []byte(schemaVersion))
}

// adoptLockers makes a store from before served lockers existed serve the
// lockers it already holds (once: only while none is known), so that an
// upgrade does not drop their messages.
func adoptLockers(tx *bolt.Tx) error {
	known := tx.Bucket(bKnown)
	if k, _ := known.Cursor().First(); k != nil {
		return nil
	}
	var ids []string
	if err := tx.Bucket(bLockers).ForEach(func(k, _ []byte) error {
		ids = append(ids, string(k))
		return nil
	}); err != nil {
		return err
	}
	for _, id := range ids {
		if err := boltkv.PutJSON(known, []byte(id), hub.KnownLocker{ID: id, Added: time.Now().UTC(), Source: "store"}); err != nil {
			return err
		}
	}
	return nil
}

func (t boltTx) ReplaceStock(items []stock.Item) error {
	if err := t.tx.DeleteBucket(bStock); err != nil {
		return err
	}
	b, err := t.tx.CreateBucket(bStock)
	if err != nil {
		return err
	}
	for _, it := range items {
		if err := boltkv.PutJSON(b, []byte(it.Barcode), it); err != nil {
			return err
		}
	}
	return nil
}

func (t boltTx) StockItem(barcode string) (it stock.Item, found bool, err error) {
	found, err = boltkv.GetJSON(t.b(bStock), []byte(barcode), &it)
	return it, found, err
}

func (t boltTx) Stock(after string, limit int) ([]stock.Item, error) {
	var out []stock.Item
	c := t.b(bStock).Cursor()
	k, v := c.Seek([]byte(after))
	if k != nil && string(k) == after {
		k, v = c.Next()
	}
	for ; k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
		var it stock.Item
		if err := json.Unmarshal(v, &it); err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}
