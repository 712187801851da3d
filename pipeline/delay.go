package pipeline

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Delay is the pause between two mock steps: a fixed duration when Min equals
// Max, otherwise drawn uniformly from [Min, Max].
type Delay struct {
	Min, Max time.Duration
}

// ParseDelay reads "2s-3s" (a range), "500ms" (fixed) or "0" (none).
func ParseDelay(s string) (Delay, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	min, err := parseDuration(lo)
	if err != nil {
		return Delay{}, fmt.Errorf("step delay %q: %w", s, err)
	}
	if !isRange {
		return Delay{Min: min, Max: min}, nil
	}
	max, err := parseDuration(hi)
	if err != nil {
		return Delay{}, fmt.Errorf("step delay %q: %w", s, err)
	}
	if max < min {
		return Delay{}, fmt.Errorf("step delay %q: upper bound below lower bound", s)
	}
	return Delay{Min: min, Max: max}, nil
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %s", d)
	}
	return d, nil
}

// Next draws one pause.
func (d Delay) Next() time.Duration {
	if d.Max <= d.Min {
		return d.Min
	}
	return d.Min + rand.N(d.Max-d.Min+1)
}

// Mean is the average pause.
func (d Delay) Mean() time.Duration {
	return d.Min + (d.Max-d.Min)/2
}

// String formats d the way ParseDelay reads it.
func (d Delay) String() string {
	if d.Min == d.Max {
		return d.Min.String()
	}
	return d.Min.String() + "-" + d.Max.String()
}
