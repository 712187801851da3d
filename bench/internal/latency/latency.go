// Package latency measures publish-to-receive latency for the loopback load
// tools: a lock-free histogram, and the send stamp that each event they
// send carries in its data as "sent":UNIX_NANOS.
package latency

import (
	"bytes"
	"fmt"
	"math/bits"
	"strconv"
	"sync/atomic"
	"time"
)

// Histogram counts latencies in microseconds, in buckets about 3% wide, so
// that thousands of readers can record without locks or allocations.
type Histogram struct {
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

// Record counts one latency.
func (h *Histogram) Record(d time.Duration) {
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

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range h.buckets {
		h.buckets[i].Add(o.buckets[i].Load())
	}
	if top := o.top.Load(); top > h.top.Load() {
		h.top.Store(top)
	}
}

// Count is how many latencies h holds.
func (h *Histogram) Count() uint64 {
	var total uint64
	for i := range h.buckets {
		total += h.buckets[i].Load()
	}
	return total
}

// Quantile is the lower bound of the bucket that holds quantile q.
func (h *Histogram) Quantile(q float64) time.Duration {
	total := h.Count()
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
	return h.Max()
}

// Max is the highest latency recorded.
func (h *Histogram) Max() time.Duration { return time.Duration(h.top.Load()) * time.Microsecond }

// MarshalText writes h as "max:µs" and then its non-empty buckets as
// "index:count", separated by spaces, so that a child process can hand its
// histogram to its parent.
func (h *Histogram) MarshalText() ([]byte, error) {
	b := fmt.Appendf(nil, "max:%d", h.top.Load())
	for i := range h.buckets {
		if n := h.buckets[i].Load(); n > 0 {
			b = fmt.Appendf(b, " %d:%d", i, n)
		}
	}
	return b, nil
}

// UnmarshalText adds the histogram MarshalText wrote to h.
func (h *Histogram) UnmarshalText(text []byte) error {
	var o Histogram
	for _, f := range bytes.Fields(text) {
		k, v, ok := bytes.Cut(f, []byte(":"))
		n, err := strconv.ParseInt(string(v), 10, 64)
		if !ok || err != nil || n < 0 {
			return fmt.Errorf("latency: bad histogram field %q", f)
		}
		if string(k) == "max" {
			o.top.Store(n)
			continue
		}
		i, err := strconv.Atoi(string(k))
		if err != nil || i < 0 || i >= len(o.buckets) {
			return fmt.Errorf("latency: bad histogram field %q", f)
		}
		o.buckets[i].Store(uint64(n))
	}
	h.Merge(&o)
	return nil
}

var sentKey = []byte(`"sent":`)

// Stamp finds the first send stamp in data and returns it, in Unix
// nanoseconds, with what follows it; ok is false when data holds none.
func Stamp(data []byte) (sent int64, rest []byte, ok bool) {
	i := bytes.Index(data, sentKey)
	if i < 0 {
		return 0, data, false
	}
	rest = data[i+len(sentKey):]
	for len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9' {
		sent = sent*10 + int64(rest[0]-'0')
		rest = rest[1:]
	}
	return sent, rest, true
}
