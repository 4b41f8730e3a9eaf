//go:build !linux

package main

// atLowPriority runs fn; lowering a thread's priority is Linux-only here.
func atLowPriority(nice int, fn func() error) error { return fn() }
