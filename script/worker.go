package script

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dop251/goja"
)

// The engine starts workers by running its own executable again with
// these variables set and nothing else from the server's environment (no
// secrets, no configuration). init below turns such a process into a
// worker before any main or TestMain runs, so the server binary and every
// test binary that links this package can serve as one.
const (
	workerEnv    = "LATCHKEY_SCRIPT_WORKER"
	workerMemEnv = "LATCHKEY_SCRIPT_MEMORY"
)

func init() {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(workerMain(os.Stdin, os.Stdout))
	}
}

// addressHeadroom is how much address space a worker may map beyond what
// it has at start (RLIMIT_AS): the hard stop for one huge allocation that
// the heap watchdog cannot see coming.
const addressHeadroom = 1 << 30

// limitAddressSpace caps the worker's address space at what it maps now
// plus addressHeadroom. A Go program over that limit dies ("out of
// memory"), and the engine reports the run as over its memory limit.
func limitAddressSpace() {
	if raceEnabled {
		return // the race detector maps its shadow memory on demand
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if f := bytes.Fields(line); len(f) >= 2 && string(f[0]) == "VmSize:" {
			kb, err := strconv.ParseUint(string(f[1]), 10, 64)
			if err != nil {
				return
			}
			lim := kb*1024 + addressHeadroom
			_ = syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: lim, Max: lim})
			return
		}
	}
}

// workerMain serves runs one at a time until stdin closes.
func workerMain(in io.Reader, out io.Writer) int {
	memLimit, _ := strconv.ParseInt(os.Getenv(workerMemEnv), 10, 64)
	if memLimit <= 0 {
		memLimit = DefaultLimits().Memory
	}
	debug.SetMemoryLimit(memLimit)
	limitAddressSpace()

	w := bufio.NewWriterSize(out, 64<<10)
	enc := json.NewEncoder(w)
	var sendMu sync.Mutex
	send := func(m message) {
		sendMu.Lock()
		defer sendMu.Unlock()
		_ = enc.Encode(m)
		_ = w.Flush()
	}

	inbox := make(chan message, 16)
	go func() {
		dec := json.NewDecoder(bufio.NewReaderSize(in, 256<<10))
		for {
			var m message
			if err := dec.Decode(&m); err != nil {
				close(inbox)
				return
			}
			inbox <- m
		}
	}()

	var current atomic.Pointer[goja.Runtime]
	go watchMemory(memLimit, &current)

	programs := map[string]*goja.Program{}
	var ids int64
	next := newRun(send, inbox, &ids)
	for m := range inbox {
		if m.T != msgRun {
			continue // a late answer to a fetch of a run that has ended
		}
		prog := programs[m.Key]
		if prog == nil {
			if m.Code == "" {
				send(message{T: msgDone, ErrKind: errUncached})
				continue
			}
			p, err := goja.Compile("hook.js", m.Code, false)
			if err != nil {
				send(message{T: msgDone, ErrKind: ErrInvalid, Err: err.Error()})
				continue
			}
			if len(programs) >= 64 {
				clear(programs)
			}
			programs[m.Key], prog = p, p
		}
		r := next
		current.Store(r.vm)
		res := r.execute(prog, m.Input, time.Duration(m.TimeoutMS)*time.Millisecond, m.Check)
		current.Store(nil)
		send(res)
		r = nil
		if res.ErrKind == ErrMemory {
			// Give the memory back before the next run.
			runtime.GC()
			debug.FreeOSMemory()
		}
		next = newRun(send, inbox, &ids)
	}
	return 0
}

// watchMemory interrupts the running hook when the worker's heap passes
// limit after a collection: one hook runs per worker, so the heap is that
// hook's (plus a few MiB of runtime). It samples every 5 ms; a single
// allocation larger than the address-space headroom is stopped by
// RLIMIT_AS instead.
func watchMemory(limit int64, current *atomic.Pointer[goja.Runtime]) {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for range t.C {
		vm := current.Load()
		if vm == nil {
			continue
		}
		metrics.Read(samples)
		if int64(samples[0].Value.Uint64()) < limit {
			continue
		}
		runtime.GC()
		metrics.Read(samples)
		if used := int64(samples[0].Value.Uint64()); used >= limit && current.Load() == vm {
			vm.Interrupt(interruption{ErrMemory, fmt.Sprintf("The hook used more than %d MiB of memory and was stopped.", limit>>20)})
		}
	}
}
