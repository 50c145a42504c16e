package hub

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
		per[partitionOf(fmt.Sprintf("fleet-%03d", i))]++
	}
	for k := range partitions {
		if per[k] < 10 {
			t.Errorf("partition %d holds %d of 1,000 lockers", k, per[k])
		}
	}
	for _, members := range [][]string{{"lockerhub-1", "lockerhub-2"}, {"lockerhub-1", "lockerhub-2", "lockerhub-3"}, {"a", "b"}} {
		owned := map[string]int{}
		for k := range partitions {
			owned[ownerOf(k, members)]++
		}
		for _, m := range members {
			if owned[m] < partitions/len(members)/2 {
				t.Errorf("%v: %s owns %d of %d partitions", members, m, owned[m], partitions)
			}
		}
	}
}
