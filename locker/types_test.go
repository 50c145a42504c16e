package locker

import (
	"errors"
	"testing"
)

func TestOrderTransitionTable(t *testing.T) {
	all := []OrderState{OrderAssigned, OrderReady, OrderPickedUp, OrderExpired, OrderCancelled, OrderRetrieved}
	allowed := map[[2]OrderState]bool{
		{OrderAssigned, OrderReady}:      true,
		{OrderAssigned, OrderCancelled}:  true,
		{OrderReady, OrderPickedUp}:      true,
		{OrderReady, OrderExpired}:       true,
		{OrderReady, OrderCancelled}:     true,
		{OrderExpired, OrderRetrieved}:   true,
		{OrderCancelled, OrderRetrieved}: true,
	}
	for _, from := range all {
		for _, to := range all {
			err := CheckTransition(from, to)
			if want := allowed[[2]OrderState{from, to}]; want != (err == nil) {
				t.Errorf("%s → %s: err = %v, want allowed=%v", from, to, err, want)
			}
			if err != nil && !errors.Is(err, ErrIllegalTransition) {
				t.Errorf("%s → %s: error does not wrap ErrIllegalTransition: %v", from, to, err)
			}
		}
	}
}

func TestCancelledRetrievedOnlyIfLoaded(t *testing.T) {
	tests := []struct {
		name    string
		loaded  bool
		wantErr bool
	}{
		{"loaded items are retrieved", true, false},
		{"cancelled before loading has nothing to retrieve", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Order{ID: "o1", State: OrderCancelled, Loaded: tt.loaded}
			if o.NeedsRetrieval() != tt.loaded {
				t.Fatalf("NeedsRetrieval = %v, want %v", o.NeedsRetrieval(), tt.loaded)
			}
			err := o.Move(OrderRetrieved)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestSizeFits(t *testing.T) {
	tests := []struct {
		order, comp Size
		fits        bool
	}{
		{SizeS, SizeS, true}, {SizeS, SizeXL, true}, {SizeM, SizeS, false}, {SizeXL, SizeL, false},
		{SizeL, SizeL, true}, {"", SizeL, false}, {SizeS, "Q", false},
	}
	for _, tt := range tests {
		if got := tt.order.Fits(tt.comp); got != tt.fits {
			t.Errorf("%q fits %q = %v, want %v", tt.order, tt.comp, got, tt.fits)
		}
	}
}
