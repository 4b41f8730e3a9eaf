// Package procstat reads CPU figures from /proc for the benchmark tools
// (cmd/signinbench, cmd/oidcbench) and the PostgreSQL test clusters
// (store/pgtest): a process's CPU time, a process tree's, the machine's
// busy time, this process's own, and the load average. Linux only;
// elsewhere the figures are zero or "?".
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Stat returns the fields of /proc/pid/stat after the command name
// (state, ppid, ...), or nil.
func Stat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 > len(b) {
		return nil
	}
	return strings.Fields(string(b[i+2:]))
}

// CPU is a process's user+system CPU time, with its reaped children's
// when children is set.
func CPU(pid int, children bool) time.Duration {
	f := Stat(pid)
	if len(f) < 15 {
		return 0
	}
	var t int64
	fields := []int{11, 12}
	if children {
		fields = append(fields, 13, 14)
	}
	for _, i := range fields {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		t += n
	}
	return time.Duration(t) * time.Second / 100 // USER_HZ
}

// TreeCPU is the CPU time so far of process pid, its reaped children and
// its live children (not their children): for a postmaster, the whole
// cluster.
func TreeCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	total := CPU(pid, true)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := Stat(child); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			total += CPU(child, false)
		}
	}
	return total
}

// Machine reads the busy and total jiffies of all CPUs from /proc/stat.
func Machine() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	// user nice system idle iowait irq softirq steal (guest time is
	// already counted in user).
	for i, v := range f[1:min(len(f), 9)] {
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// Self is this process's user+system CPU time so far.
func Self() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Loadavg is the 1, 5 and 15 minute load averages, or "?".
func Loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
