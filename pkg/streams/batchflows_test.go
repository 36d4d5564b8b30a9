package streams

import (
	"slices"
	"testing"
)

// Each batch flow gets its own consumer on batch.in.<flow>, the shared one
// is left out, and transform is granted them.
func TestBatchFlowsHaveTheirOwnConsumers(t *testing.T) {
	opts := DefaultOptions()
	opts.BatchFlows = []string{"resolute-gl", "beaker-inventory"}
	topo := New(opts)
	if _, ok := topo.Consumer(TransformBatch); ok {
		t.Errorf("%s is still in a topology with per-flow batch consumers", TransformBatch)
	}
	shared, _ := New(DefaultOptions()).Consumer(TransformBatch)
	for _, f := range opts.BatchFlows {
		c, ok := topo.Consumer(TransformBatchFlow(f))
		if !ok {
			t.Fatalf("no consumer %s", TransformBatchFlow(f))
		}
		if c.Stream != BatchIn || !slices.Equal(c.Filter, []string{BatchSubject(f)}) || c.MaxDeliver != shared.MaxDeliver ||
			c.AckWait != shared.AckWait || c.RetryBase != shared.RetryBase || c.Hop != shared.Hop {
			t.Errorf("consumer %+v, want the settings of %s on %s", c, TransformBatch, BatchSubject(f))
		}
	}
	transform, ok := topo.Grant(UserTransform)
	if !ok {
		t.Fatal("no transform grant")
	}
	for _, f := range opts.BatchFlows {
		if !slices.Contains(transform.Consume, TransformBatchFlow(f)) {
			t.Errorf("transform is not granted %s: %v", TransformBatchFlow(f), transform.Consume)
		}
	}
	if _, err := topo.AccountsConf(); err != nil {
		t.Fatal(err)
	}
}
