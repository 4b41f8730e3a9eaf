//go:build race

package main

// raceEnabled: the race detector slows every goroutine several times over,
// so latency bounds are not checked under it.
const raceEnabled = true
