package partition

import (
	"fmt"
	"testing"
)

// The partitions spread: locker ids over the partitions, and the
// partitions over replicas whose names differ in one character (FNV gave
// lockerhub-1 all 32 of them).
func TestSharesSpread(t *testing.T) {
	per := map[int]int{}
	for i := range 1000 {
		per[Of(fmt.Sprintf("fleet-%03d", i))]++
	}
	for k := range N {
		if per[k] < 10 {
			t.Errorf("partition %d holds %d of 1,000 lockers", k, per[k])
		}
	}
	for _, members := range [][]string{{"lockerhub-1", "lockerhub-2"}, {"lockerhub-1", "lockerhub-2", "lockerhub-3"}, {"a", "b"}} {
		owned := map[string]int{}
		for k := range N {
			owned[Owner(k, members)]++
		}
		for _, m := range members {
			if owned[m] < N/len(members)/2 {
				t.Errorf("%v: %s owns %d of %d partitions", members, m, owned[m], N)
			}
		}
	}
}

// A set owns everything until first taken; then what it holds, and it
// says when a partition changed hands.
func TestSet(t *testing.T) {
	var s Set
	if !s.Owns("any") || s.Held() != 0 {
		t.Fatal("a fresh set owns nothing, or holds partitions")
	}
	var owned [N]bool
	owned[Of("nb-1")] = true
	if changed, first := s.Take(owned); !changed || !first {
		t.Fatalf("first take: changed %v first %v", changed, first)
	}
	if !s.Owns("nb-1") || s.Held() != 1 {
		t.Fatalf("held %d", s.Held())
	}
	for i := range 100 {
		if id := fmt.Sprintf("nb-%d", i+2); Of(id) != Of("nb-1") && s.Owns(id) {
			t.Fatalf("%s owned", id)
		}
	}
	if changed, first := s.Take(owned); changed || first {
		t.Fatalf("the same again: changed %v first %v", changed, first)
	}
}
