package main

import (
	"runtime"
	"syscall"
)

// atLowPriority runs fn on an OS thread of its own whose nice value is
// raised by nice, so that the backup's copying and integrity_check give
// way to the server's requests on a busy machine. The thread is never
// unlocked: it ends with the goroutine, nice value and all, and does not
// go back to the pool for other goroutines.
func atLowPriority(nice int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if nice > 0 {
			// On Linux, PRIO_PROCESS with a thread ID sets that thread's nice value.
			if cur, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid()); err == nil {
				// Getpriority returns 20 - nice.
				_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), min(20-cur+nice, 19))
			}
		}
		errc <- fn()
	}()
	return <-errc
}
