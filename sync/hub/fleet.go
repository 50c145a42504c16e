package hub

import (
	"time"

	"github.com/lockerd/lockerd/sync/hub/fleet"
)

// The fleet (sync/hub/fleet): its part of a store transaction, and what
// it asks of the core: the lockers served, and commands sent to them.

// fleetTx is tx as the fleet's.
func fleetTx(tx Tx) fleet.Tx {
	return fleet.Tx{Docs: tx.Docs, Lockers: registryPort{tx.Lockers}, Alarms: tx.Alarms, Hooks: tx.Webhooks}
}

// fleetStore is the hub's store as the fleet's.
type fleetStore struct{ h *Hub }

func (s fleetStore) View(fn func(fleet.Tx) error) error {
	return s.h.store.View(func(tx Tx) error { return fn(fleetTx(tx)) })
}

func (s fleetStore) Update(fn func(fleet.Tx) error) error {
	return s.h.store.Update(func(tx Tx) error { return fn(fleetTx(tx)) })
}

// registryPort is the core's known lockers as the fleet's registry.
type registryPort struct{ lockers LockerTx }

func (p registryPort) Serve(id, source string, at time.Time) error {
	if ok, err := p.lockers.Known(id); err != nil || ok {
		return err
	}
	return p.lockers.PutKnown(KnownLocker{ID: id, Added: at, Source: source})
}

// fleetLockers is the core as the fleet asks it outside a transaction.
type fleetLockers struct{ h *Hub }

func (l fleetLockers) RequireServed(id string) error { return l.h.requireKnown(id) }

func (l fleetLockers) Served() ([]string, error) {
	known, err := l.h.KnownLockers()
	ids := make([]string, 0, len(known))
	for _, k := range known {
		ids = append(ids, k.ID)
	}
	return ids, err
}

func (l fleetLockers) Command(lockerID, typ string, body any) (string, error) {
	return l.h.command(lockerID, typ, body)
}

// Fleet is the hub's fleet: provisioning, broker credentials,
// configurations, releases and rollouts.
func (h *Hub) Fleet() *fleet.Service { return h.fleet }
