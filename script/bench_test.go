package script

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// BenchmarkRunTrivial runs a trivial hook (compiled once; the worker
// caches the program) with a user.created event, one run at a time and in
// parallel: the runtime's cost per run, a round trip to a warm worker
// process with a fresh goja runtime each time.
func BenchmarkRunTrivial(b *testing.B) {
	c, err := Compile(`export default async (e: any) => { if (e.type !== "user.created") throw new Error(e.type); }`)
	if err != nil {
		b.Fatal(err)
	}
	e := NewEngine(nil, Limits{})
	defer e.Close()
	in := json.RawMessage(createdEvent)
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.Run(context.Background(), c, in, 5*time.Second); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.Run(context.Background(), c, in, 5*time.Second); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
