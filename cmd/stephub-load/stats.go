package main

import (
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// histogram counts latencies in microseconds, in buckets about 3% wide, so
// that thousands of subscribers can record without locks or allocations.
type histogram struct {
	buckets [64 * 64]atomic.Uint64
	top     atomic.Int64
}

// bucketOf maps µs to a bucket: exact below 64, then 32 buckets per power of
// two.
func bucketOf(us uint64) int {
	if us < 64 {
		return int(us)
	}
	e := bits.Len64(us) - 6
	return e*64 + int(us>>e)
}

// lowerBound is the smallest µs value of bucket i.
func lowerBound(i int) uint64 {
	e, m := i/64, uint64(i%64)
	if e == 0 {
		return m
	}
	return m << e
}

func (h *histogram) record(d time.Duration) {
	us := uint64(max(d.Microseconds(), 0))
	i := min(bucketOf(us), len(h.buckets)-1)
	h.buckets[i].Add(1)
	for {
		top := h.top.Load()
		if int64(us) <= top || h.top.CompareAndSwap(top, int64(us)) {
			return
		}
	}
}

// merge adds o's counts to h.
func (h *histogram) merge(o *histogram) {
	for i := range h.buckets {
		h.buckets[i].Add(o.buckets[i].Load())
	}
	if top := o.top.Load(); top > h.top.Load() {
		h.top.Store(top)
	}
}

func (h *histogram) quantile(q float64) time.Duration {
	var total uint64
	for i := range h.buckets {
		total += h.buckets[i].Load()
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q * float64(total))
	var seen uint64
	for i := range h.buckets {
		if seen += h.buckets[i].Load(); seen > rank {
			return time.Duration(lowerBound(i)) * time.Microsecond
		}
	}
	return h.max()
}

func (h *histogram) max() time.Duration { return time.Duration(h.top.Load()) * time.Microsecond }

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
