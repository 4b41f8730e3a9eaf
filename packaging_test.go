package main

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"latchkey/store/testdb"
)

// The user the Dockerfile creates; a uid needs no passwd entry to run as.
const dockerUID = 10001

// TestDockerfileDeclares checks the Dockerfile says what the packaging
// test below emulates: a non-root user, the /data volume, the listen
// address, and a HEALTHCHECK through `latchkey healthcheck`.
func TestDockerfileDeclares(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, s := range []string{
		"CGO_ENABLED=1 go build",
		"--uid 10001",
		"USER latchkey:latchkey",
		`VOLUME ["/data"]`,
		"LATCHKEY_ADDR=:8080",
		"LATCHKEY_DB=/data/latchkey.db",
		`HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 CMD ["latchkey", "healthcheck"]`,
	} {
		if !strings.Contains(df, s) {
			t.Errorf("Dockerfile lacks %q", s)
		}
	}
	if strings.Count(df, "\nFROM ") < 1 || !strings.Contains(df, " AS build") {
		t.Error("Dockerfile is not multi-stage")
	}
}

// TestRunsAsNonRootUser builds the binary and runs it as the Dockerfile's
// unprivileged user against a data directory owned by that user, as the
// image does: it serves /healthz, `latchkey healthcheck` (the image's
// HEALTHCHECK) passes, and `latchkey backup` works beside the running
// server. A directory the user cannot write is refused. The example
// systemd unit passes `systemd-analyze verify` when that tool exists.
func TestRunsAsNonRootUser(t *testing.T) {
	testdb.SkipOnPostgres(t, "it checks the modes of the SQLite database file the package's user creates")
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: running as another user needs root (run the tests as root, as CI does, to exercise this)")
	}
	dir, err := os.MkdirTemp("", "latchkey-pkg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "latchkey")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, dockerUID, dockerUID); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + data, "LATCHKEY_ADDR=" + addr, "LATCHKEY_DB=" + filepath.Join(data, "latchkey.db"),
		"LATCHKEY_PUBLIC_URL=http://" + addr, "LATCHKEY_BCRYPT_COST=4"}
	asUser := func(args ...string) *exec.Cmd {
		c := exec.Command(bin, args...)
		c.Dir, c.Env = data, env
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: dockerUID, Gid: dockerUID}}
		return c
	}

	srv := asUser()
	var logs bytes.Buffer
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		if srv.ProcessState == nil {
			_ = srv.Process.Kill()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("server exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /healthz: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := asUser("healthcheck").CombinedOutput(); err != nil || !strings.Contains(string(out), `"status":"ok"`) {
		t.Errorf("healthcheck as the user: %v %s", err, out)
	}
	if out, err := asUser("backup", filepath.Join(data, "copy.db")).CombinedOutput(); err != nil {
		t.Errorf("backup as the user: %v %s", err, out)
	}
	for _, name := range []string{"latchkey.db", "copy.db"} {
		fi, err := os.Stat(filepath.Join(data, name))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != dockerUID {
			t.Errorf("%s is owned by uid %d, want %d", name, st.Uid, dockerUID)
		}
	}
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("server exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop on SIGTERM")
	}
	// After the stop the health check fails.
	if err := asUser("healthcheck", "-timeout", "1s").Run(); err == nil {
		t.Error("healthcheck passed with the server stopped")
	}

	// A data directory the user may not write is refused at start.
	locked := filepath.Join(dir, "root-owned")
	if err := os.Mkdir(locked, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := asUser()
	bad.Env = append(bad.Env[:len(bad.Env):len(bad.Env)], "LATCHKEY_DB="+filepath.Join(locked, "latchkey.db"), "LATCHKEY_ADDR="+freeAddr(t))
	bad.Dir = locked
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "latchkey") {
		t.Errorf("a read-only data directory: %v %s", err, out)
	}

	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze not found: the unit file is not verified")
		return
	}
	unit, err := os.ReadFile("deploy/latchkey.service")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "latchkey.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/local/bin/latchkey"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
