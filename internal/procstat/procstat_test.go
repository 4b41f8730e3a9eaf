package procstat

import (
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

func TestFiguresOfThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	before := Self()
	busy0, total0 := Machine()
	for end := time.Now().Add(150 * time.Millisecond); time.Now().Before(end); {
	}
	if d := Self() - before; d < 50*time.Millisecond {
		t.Fatalf("Self grew by %v over 150 ms of spinning", d)
	}
	if f := Stat(os.Getpid()); len(f) < 15 || f[1] != itoa(os.Getppid()) {
		t.Fatalf("Stat = %v; want ppid %d second", f, os.Getppid())
	}
	if CPU(os.Getpid(), false) <= 0 || TreeCPU(os.Getppid()) < CPU(os.Getpid(), false) {
		t.Fatal("a process's CPU must be positive and within its parent's tree")
	}
	busy1, total1 := Machine()
	if busy1 <= busy0 || total1 <= total0 {
		t.Fatalf("machine jiffies did not grow: %d->%d busy, %d->%d total", busy0, busy1, total0, total1)
	}
	if Loadavg() == "?" || Stat(-1) != nil || CPU(-1, true) != 0 || TreeCPU(0) != 0 {
		t.Fatal("bad pid or loadavg figures")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
