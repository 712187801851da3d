package latency

import (
	"testing"
	"time"
)

func TestHistogram(t *testing.T) {
	var a, b Histogram
	for i := 1; i <= 99; i++ {
		a.Record(time.Duration(i) * time.Millisecond)
	}
	b.Record(2 * time.Second)
	a.Merge(&b)
	if n := a.Count(); n != 100 {
		t.Errorf("Count = %d, want 100", n)
	}
	// Buckets are about 3 % wide, and a quantile is its bucket's floor.
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.50, 51 * time.Millisecond}, {0.99, 2 * time.Second}} {
		got := a.Quantile(tc.q)
		if got > tc.want || got < tc.want*96/100 {
			t.Errorf("Quantile(%v) = %s, want %s within 4 %% below", tc.q, got, tc.want)
		}
	}
	if m := a.Max(); m != 2*time.Second {
		t.Errorf("Max = %s, want 2s", m)
	}
	var empty Histogram
	if q := empty.Quantile(0.99); q != 0 {
		t.Errorf("an empty histogram's p99 is %s", q)
	}
}

func TestStamp(t *testing.T) {
	data := []byte(`data: {"id":1,"data":{"sent":1700000000123456789}}` + "\n" + `data: {"data":{"sent":42}}`)
	sent, rest, ok := Stamp(data)
	if !ok || sent != 1700000000123456789 {
		t.Fatalf("first Stamp = %d, %t", sent, ok)
	}
	if sent, rest, ok = Stamp(rest); !ok || sent != 42 {
		t.Fatalf("second Stamp = %d, %t", sent, ok)
	}
	if _, _, ok = Stamp(rest); ok {
		t.Error("a third stamp found where there is none")
	}
}

func TestHistogramText(t *testing.T) {
	var h, back Histogram
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i*i) * time.Millisecond)
	}
	text, _ := h.MarshalText()
	if err := back.UnmarshalText(text); err != nil {
		t.Fatal(err)
	}
	if back.Count() != 100 || back.Quantile(0.99) != h.Quantile(0.99) || back.Max() != h.Max() {
		t.Errorf("back from %q: %d, p99 %s, max %s; want 100, %s, %s", text, back.Count(), back.Quantile(0.99), back.Max(), h.Quantile(0.99), h.Max())
	}
	if err := back.UnmarshalText([]byte("max:1 x:2")); err == nil {
		t.Error("a bad field was taken")
	}
}
