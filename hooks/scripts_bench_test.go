package hooks

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/store"
)

// BenchmarkScriptDeliver1000 queues 1,000 user.created events for one
// trivial non-blocking TypeScript hook and measures until every delivery
// has run and been recorded, through the real queue (claim, run in a
// worker process, record). One op = 1,000 runs. It also reports the CPU
// time per run of this process (the server side: queue, IPC, and the
// benchmark's own polling of the queue every 5 ms) and of the worker
// processes (reaped when the engine closes, so their start and the check
// at save are included, once per 1,000 runs).
//
//	go test ./hooks -run '^$' -bench ScriptDeliver1000 -benchtime 10x
func BenchmarkScriptDeliver1000(b *testing.B) {
	ctx := context.Background()
	var serverCPU, workerCPU time.Duration
	runs := 0
	for n := 0; b.Loop(); n++ {
		b.StopTimer()
		children0 := cpuTime(syscall.RUSAGE_CHILDREN)
		st, err := store.Open(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("s%d.db", n)))
		if err != nil {
			b.Fatal(err)
		}
		svc, err := New(st, testSecret, Config{}, quiet)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := svc.CreateScript(ctx, admin, ScriptInput{Name: "trivial", Source: `export default (e: any) => { if (!e.id) throw new Error("no id"); }`,
			AllEvents: true, Enabled: true}); err != nil {
			b.Fatal(err)
		}
		queue1000(b, st, svc)
		self0 := cpuTime(syscall.RUSAGE_SELF)
		b.StartTimer()
		runUntil(b, svc, func() bool {
			var pending, failed int
			if err := st.DB().QueryRow(`SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'`).Scan(&pending); err != nil {
				b.Fatal(err)
			}
			if pending != 0 {
				return false
			}
			_ = st.DB().QueryRow(`SELECT COUNT(*) FROM webhook_deliveries WHERE status != 'succeeded'`).Scan(&failed)
			if failed != 0 {
				b.Fatalf("%d deliveries failed", failed)
			}
			return true
		})
		serverCPU += cpuTime(syscall.RUSAGE_SELF) - self0
		svc.Close()
		workerCPU += cpuTime(syscall.RUSAGE_CHILDREN) - children0
		runs += 1000
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(1000, "runs/op")
	b.ReportMetric(float64(serverCPU.Microseconds())/float64(runs), "server-cpu-us/run")
	b.ReportMetric(float64(workerCPU.Microseconds())/float64(runs), "worker-cpu-us/run")
}

// cpuTime is the user+system CPU time of who (RUSAGE_SELF, or the
// children reaped so far).
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCreateUserBlockingScript measures Create User (no password, so
// no bcrypt) on two databases, one without hooks and one with a trivial
// blocking TypeScript hook, alternating, so that both see the same load
// from the rest of the machine; it reports both medians and what the hook
// adds. The hook is compiled once at save; each run reuses a warm worker
// process. One op = one user created on each.
func BenchmarkCreateUserBlockingScript(b *testing.B) {
	ctx := context.Background()
	mk := func(name string, hook bool) *account.Service {
		st, err := store.Open(ctx, filepath.Join(b.TempDir(), name+".db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		svc, err := New(st, testSecret, Config{}, quiet)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(svc.Close)
		if hook {
			if _, err := svc.CreateScript(ctx, admin, ScriptInput{Name: "allow", Blocking: true, Enabled: true,
				Source: `export default (e: any) => ({ is_allowed: !e.payload.user.standard_attributes.email.endsWith("@blocked.example") })`}); err != nil {
				b.Fatal(err)
			}
		}
		acct, err := account.New(ctx, st, account.Config{BcryptCost: 4}, nil, svc, quiet)
		if err != nil {
			b.Fatal(err)
		}
		return acct
	}
	without, with := mk("plain", false), mk("hooked", true)
	create := func(a *account.Service, i int) time.Duration {
		start := time.Now()
		if _, err := a.CreateUser(ctx, admin, account.CreateUserInput{LoginIDKey: "email", LoginIDValue: fmt.Sprintf("u%d@example.com", i)}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	create(with, -1) // start the worker process
	var plain, hooked []time.Duration
	i := 0
	for b.Loop() {
		i++
		plain = append(plain, create(without, i))
		hooked = append(hooked, create(with, i))
	}
	slices.Sort(plain)
	slices.Sort(hooked)
	p, h := plain[len(plain)/2], hooked[len(hooked)/2]
	b.ReportMetric(float64(p.Microseconds())/1000, "ms-median-no-hook")
	b.ReportMetric(float64(h.Microseconds())/1000, "ms-median-hook")
	b.ReportMetric(float64((h-p).Microseconds())/1000, "ms-added")
}
