package script

import "testing"

// BenchmarkNewRun is the cost of a fresh runtime with the hook globals,
// which the worker pays between runs.
func BenchmarkNewRun(b *testing.B) {
	var ids int64
	for b.Loop() {
		r := newRun(func(message) {}, nil, &ids)
		if r.installErr != nil {
			b.Fatal(r.installErr)
		}
	}
}
