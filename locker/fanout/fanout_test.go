package fanout

import "testing"

// Every subscriber gets the values in order; a full one misses values
// and never blocks the sender; an ended subscription gets nothing more.
func TestFanout(t *testing.T) {
	f := New[int](3)
	a, stopA := f.Subscribe()
	b, stopB := f.Subscribe()
	defer stopB()
	for i := 1; i <= 5; i++ {
		f.Publish(i) // b is never read until the end: it fills up
		if got := <-a; got != i {
			t.Fatalf("a got %d, want %d", got, i)
		}
	}
	if len(b) != 3 || <-b != 1 || <-b != 2 || <-b != 3 {
		t.Fatal("a full subscriber must keep the first values and miss the rest")
	}
	stopA()
	f.Publish(6)
	if len(a) != 0 || f.Subscribers() != 1 {
		t.Fatalf("after its end a got %d values; %d subscribers", len(a), f.Subscribers())
	}
}
