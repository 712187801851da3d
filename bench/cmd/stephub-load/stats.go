package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// procSample is what /proc says of the server.
type procSample struct {
	cpu     time.Duration // user + system
	rss     int64         // bytes resident now
	rssPeak int64         // bytes resident at most, ever
}

// clockTick is the unit of /proc/PID/stat's times: USER_HZ, 100 on Linux.
const clockTick = 10 * time.Millisecond

// readProc samples the process pid; pid 0 samples nothing.
func readProc(pid int) (procSample, error) {
	if pid == 0 {
		return procSample{}, nil
	}
	var p procSample
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return p, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	p.cpu = time.Duration(utime+stime) * clockTick
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return p, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		name, value, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			p.rss = kb << 10
		case "VmHWM":
			p.rssPeak = kb << 10
		}
	}
	return p, nil
}

// cpuTimes is the machine's CPU time so far, in clock ticks: all of it, and
// the share the hypervisor gave to other guests while this one had work
// (steal), which slows a run down as much as any load of its own.
type cpuTimes struct{ total, steal int64 }

// readCPUTimes reads the first line of /proc/stat: user, nice, system,
// idle, iowait, irq, softirq, steal (guest time is counted in user).
func readCPUTimes() (cpuTimes, error) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var t cpuTimes
	for i, f := range fields[1:9] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: %w", err)
		}
		t.total += n
		if i == 7 {
			t.steal = n
		}
	}
	return t, nil
}

// stealShare is the share of the machine's CPU time stolen between a and b.
func stealShare(a, b cpuTimes) float64 {
	if b.total <= a.total {
		return 0
	}
	return float64(b.steal-a.steal) / float64(b.total-a.total)
}
