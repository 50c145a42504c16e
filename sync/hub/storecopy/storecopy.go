package storecopy

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/fleet"
)

// Copied counts what Copy moved.
type Copied struct {
	Lockers, Known, Stores, Events, Orders, Pending, Commands, Alarms, Circulation, Tokens, Audit, Webhooks, Deliveries, Notices, Users, Docs int
}

// Copy moves everything src holds into dst (a pilot's bbolt file into
// PostgreSQL, say): lockers served and heard from, their stores and
// events under the same epochs, orders, the last rev of each locker (so
// revs go on from there), pending order changes, commands and alarms.
// src is read in one transaction and dst written in one: a failure leaves
// dst as it was. dst must hold no locker: data is never merged.
func Copy(dst, src hub.Store) (Copied, error) {
	var n Copied
	return n, src.View(func(from hub.Tx) error {
		return dst.Update(func(to hub.Tx) error {
			n = Copied{}
			if ks, err := to.Lockers.KnownLockers(); err != nil || len(ks) > 0 {
				return errors.Join(err, errors.New("the target store already serves lockers: copy only into an empty one"))
			}
			if ls, err := to.Lockers.Lockers(); err != nil || len(ls) > 0 {
				return errors.Join(err, errors.New("the target store already holds lockers: copy only into an empty one"))
			}
			known, err := from.Lockers.KnownLockers()
			if err != nil {
				return err
			}
			for _, k := range known {
				if err := to.Lockers.PutKnown(k); err != nil {
					return err
				}
			}
			n.Known = len(known)
			lockers, err := from.Lockers.Lockers()
			if err != nil {
				return err
			}
			ids := map[string]bool{}
			for _, k := range known {
				ids[k.ID] = true
			}
			for _, li := range lockers {
				ids[li.ID] = true
				if err := to.Lockers.PutLocker(li); err != nil {
					return err
				}
			}
			n.Lockers = len(lockers)
			for id := range ids {
				if err := copyLocker(to, from, id, &n); err != nil {
					return fmt.Errorf("locker %s: %w", id, err)
				}
			}
			cmds, err := from.Commands.Commands()
			if err != nil {
				return err
			}
			for _, c := range cmds {
				if err := to.Commands.PutCommand(c); err != nil {
					return err
				}
			}
			n.Commands = len(cmds)
			alarms, err := from.Alarms.Alarms(0)
			if err != nil {
				return err
			}
			for _, a := range alarms {
				// Numbered again in order: an empty store numbers from 1.
				if _, err := to.Alarms.AddAlarm(a); err != nil {
					return err
				}
			}
			n.Alarms = len(alarms)
			circs, err := from.Circ.Circs(0, 0)
			if err != nil {
				return err
			}
			for _, c := range circs {
				// Numbered again in order, as alarms: the same ids.
				if _, err := to.Circ.AddCirc(c); err != nil {
					return err
				}
			}
			n.Circulation = len(circs)
			tokens, err := from.Auth.Tokens()
			if err != nil {
				return err
			}
			for _, tok := range tokens {
				if err := to.Auth.PutToken(tok); err != nil {
					return err
				}
			}
			n.Tokens = len(tokens)
			audit, err := from.Auth.Audit(0, 0)
			if err != nil {
				return err
			}
			for _, a := range audit {
				if _, err := to.Auth.AddAudit(a); err != nil {
					return err
				}
			}
			n.Audit = len(audit)
			hooks, err := from.Webhooks.Webhooks()
			if err != nil {
				return err
			}
			for _, w := range hooks {
				if err := to.Webhooks.PutWebhook(w); err != nil {
					return err
				}
			}
			dels, err := from.Webhooks.Deliveries(0, 0)
			if err != nil {
				return err
			}
			for _, d := range dels {
				if _, err := to.Webhooks.AddDelivery(d); err != nil {
					return err
				}
			}
			n.Webhooks, n.Deliveries = len(hooks), len(dels)
			notices, err := from.Notices.Notices(0, 0)
			if err != nil {
				return err
			}
			for _, nt := range notices {
				if _, _, err := to.Notices.AddNotice(nt); err != nil {
					return err
				}
			}
			n.Notices = len(notices)
			users, err := from.Auth.Users()
			if err != nil {
				return err
			}
			for _, u := range users {
				if err := to.Auth.PutUser(u); err != nil {
					return err
				}
			}
			n.Users = len(users)
			for _, kind := range fleet.DocKinds {
				docs, err := from.Docs.Docs(kind)
				if err != nil {
					return err
				}
				for _, raw := range docs {
					var id struct {
						ID string `json:"id"`
					}
					if err := json.Unmarshal(raw, &id); err != nil || id.ID == "" {
						return fmt.Errorf("%s document without an id", kind)
					}
					if err := to.Docs.PutDoc(kind, id.ID, raw); err != nil {
						return err
					}
				}
				n.Docs += len(docs)
			}
			return nil
		})
	})
}

func copyLocker(to, from hub.Tx, id string, n *Copied) error {
	recs, err := from.Lockers.StoreRecs(id)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if err := to.Lockers.PutStoreRec(id, rec); err != nil {
			return err
		}
	}
	n.Stores += len(recs)
	// Events in pages, each under its epoch.
	var after hub.Cursor
	for {
		evs, err := from.Events.Events(id, after, 1000)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if err := to.Events.PutEvent(id, e.Epoch, e.Event); err != nil {
				return err
			}
			after = hub.Cursor{Epoch: e.Epoch, Seq: e.Seq}
		}
		n.Events += len(evs)
		if len(evs) < 1000 {
			break
		}
	}
	orders, err := from.Orders.Orders(id)
	if err != nil {
		return err
	}
	for _, o := range orders {
		if err := to.Orders.PutOrder(o); err != nil {
			return err
		}
	}
	n.Orders += len(orders)
	rev, err := from.Orders.LastRev(id)
	if err != nil {
		return err
	}
	if rev > 0 {
		if err := to.Orders.SetLastRev(id, rev); err != nil {
			return err
		}
	}
	// Pruning up to rev 0 drops nothing (revs start at 1): all of them,
	// by rev and part.
	pending, err := from.Orders.PrunePending(id, 0)
	if err != nil {
		return err
	}
	for _, p := range pending {
		if err := to.Orders.PutPending(id, p.Rev, p.Part, p); err != nil {
			return err
		}
	}
	n.Pending += len(pending)
	return nil
}
