package main

import (
	"runtime"
	"syscall"
	"testing"
)

// TestAtLowPriority: fn runs on a thread 10 nice levels down, and the
// caller's thread keeps its own.
func TestAtLowPriority(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	var inside int
	err = atLowPriority(10, func() error {
		var err error
		inside, err = syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Getpriority answers 20 - nice.
	if want := max(before-10, 1); inside != want {
		t.Errorf("inside: 20-nice = %d, want %d (caller %d)", inside, want, before)
	}
	after, _ := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	if after != before {
		t.Errorf("the caller's thread changed priority: %d -> %d", before, after)
	}
}
