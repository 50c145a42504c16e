package locker_test

import (
	"strings"
	"testing"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/lockertest"
)

// TestBadgeRoles: what each role's session may do, scanned command by
// command, and what a volunteer's badge does outside a session.
func TestBadgeRoles(t *testing.T) {
	set := lockertest.Settings()
	set.Badges = []locker.Badge{
		{Name: "Staff A", Hash: lockertest.Key.Hash("STAFFA1"), Role: locker.RoleStaff},
		{Name: "Tech B", Hash: lockertest.Key.Hash("TECHB22"), Role: locker.RoleTechnician},
		{Name: "Vol C", Hash: lockertest.Key.Hash("VOLC333"), Role: locker.RoleVolunteer},
	}
	c := lockertest.NewCabinet(t, set)
	tests := []struct {
		badge, scan string
		want        locker.Outcome
		reason      string // a fragment, "" for any
	}{
		{"STAFFA1", "MAINT-S1", locker.OutcomeMaintOpen, ""},
		{"STAFFA1", "OOS-S2", locker.OutcomeNothing, "out of service"},
		{"STAFFA1", "INS-S2", locker.OutcomeNothing, "in service"},
		{"STAFFA1", "RETRIEVE", locker.OutcomeNothing, "nothing to retrieve"},
		{"STAFFA1", "EMPTYBIN", locker.OutcomeBinEmptied, ""}, // no service lock: recorded at once
		{"STAFFA1", "MAINT-X9", locker.OutcomeNothing, "unknown compartment"},
		{"TECHB22", "MAINT-m1", locker.OutcomeMaintOpen, ""},
		{"TECHB22", "OOS-S2", locker.OutcomeNothing, "out of service"},
		{"TECHB22", "INS-S2", locker.OutcomeNothing, "in service"},
		{"TECHB22", "RETRIEVE", locker.OutcomeNothing, "not allowed for a technician"},
		{"TECHB22", "EMPTYBIN", locker.OutcomeNothing, "not allowed for a technician"},
		{"TECHB22", "31234567", locker.OutcomeNothing, "technician badge handles no orders"},
	}
	for _, tt := range tests {
		t.Run(tt.badge+" "+tt.scan, func(t *testing.T) {
			if res := scan(t, c, "front", tt.badge); res.Outcome != locker.OutcomeStaffOn {
				t.Fatalf("badge: %+v", res)
			}
			defer scan(t, c, "front", tt.badge)
			res := scan(t, c, "front", tt.scan)
			if res.Outcome != tt.want || !strings.Contains(res.Reason, tt.reason) {
				t.Fatalf("%s: %+v, want %s %q", tt.scan, res, tt.want, tt.reason)
			}
			for _, id := range res.Compartments {
				if res.Outcome == locker.OutcomeMaintOpen {
					closeDoor(t, c, id)
				}
			}
		})
	}
	c.WaitEvent(t, locker.EvMaintenanceOpen, map[string]any{"compartment": "M1", "by": "Tech B"})
	c.WaitEvent(t, locker.EvReturnBinEmptied, map[string]any{"by": "Staff A", "count": 0.0})
	// A volunteer's badge with no delivery order: nothing, and no session.
	if res := scan(t, c, "front", "VOLC333"); res.Outcome != locker.OutcomeNothing {
		t.Fatalf("volunteer: %+v", res)
	}
	// Revoked by the central: refused like any unknown code, at once.
	if n, err := c.L.ChangeBadges(locker.BadgeChange{RevokeNames: []string{"Tech B"}}); err != nil || n != 1 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	if res := scan(t, c, "front", "TECHB22"); res.Outcome != locker.OutcomeDenied {
		t.Fatalf("a revoked badge: %+v", res)
	}
	if _, err := c.L.ChangeBadges(locker.BadgeChange{Add: []locker.Badge{{Name: "bad", Hash: "nothex", Role: locker.RoleStaff}}}); err == nil {
		t.Fatal("a badge that is not a hash was added")
	}
}
