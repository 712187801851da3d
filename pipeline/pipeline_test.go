package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/stephub/stephub/pipeline"
)

func TestDelayMean(t *testing.T) {
	tests := []struct {
		delay string
		want  time.Duration
	}{
		{"2s-3s", 2500 * time.Millisecond},
		{"500ms", 500 * time.Millisecond},
		{"0", 0},
		{"0-1s", 500 * time.Millisecond},
	}
	for _, tt := range tests {
		d, err := pipeline.ParseDelay(tt.delay)
		if err != nil {
			t.Fatalf("ParseDelay(%q): %v", tt.delay, err)
		}
		if got := d.Mean(); got != tt.want {
			t.Errorf("ParseDelay(%q).Mean() = %v; want %v", tt.delay, got, tt.want)
		}
	}
}

// TestBackoff checks the retry pauses: doubling from 100 ms, staying at 5 s,
// and starting over after Reset.
func TestBackoff(t *testing.T) {
	var b pipeline.Backoff
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		if got := b.Next(); got != w {
			t.Errorf("pause %d = %v; want %v", i+1, got, w)
		}
	}
	b.Reset()
	if got := b.Next(); got != 100*time.Millisecond {
		t.Errorf("pause after Reset = %v; want 100ms", got)
	}
}

// TestSleep checks that Sleep waits out its pause, and that an ended
// context cuts it short, or refuses it even when it is zero.
func TestSleep(t *testing.T) {
	if !pipeline.Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep(1ms) = false; want true")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if pipeline.Sleep(ctx, time.Hour) {
		t.Error("Sleep with an ended context = true; want false")
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Errorf("Sleep with an ended context waited %v", waited)
	}
	if pipeline.Sleep(ctx, 0) {
		t.Error("Sleep(0) with an ended context = true; want false")
	}
}
