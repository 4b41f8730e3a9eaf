// Package benchproc runs the latchkey binary for the outside benchmarks
// (cmd/oidcbench, cmd/signinbench): waiting for it to serve, stopping it
// the way an operator does.
package benchproc

import (
	"net/http"
	"os/exec"
	"syscall"
	"time"
)

// WaitHealthy polls base+"/healthz" until it answers 200, for at most
// within; it returns the last error when the server never did.
func WaitHealthy(base string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits for the process, killing it after 30 s.
func Stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}
