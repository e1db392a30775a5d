package keydesign

import (
	"testing"
	"time"
)

// The index keys are built for every write: one allocation each, the
// string itself.
func TestIndexKeysAllocateOnce(t *testing.T) {
	now := time.Now()
	if n := testing.AllocsPerRun(100, func() { _ = IndexPK("AC0123456789abcdef0123456789abcdef", 17) }); n != 1 {
		t.Errorf("IndexPK: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = IndexSK(now, "SM0123456789abcdef0123456789abcdef") }); n != 1 {
		t.Errorf("IndexSK: %v allocations", n)
	}
}
