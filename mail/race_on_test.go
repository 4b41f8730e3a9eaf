//go:build race

package mail_test

// raceEnabled: the race detector slows everything 5-10 times, so timed
// bounds are relaxed (still far below the stalls they catch).
const raceEnabled = true
