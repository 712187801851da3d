package decimal

import (
	"strconv"
	"testing"
)

func TestParse(t *testing.T) {
	good := map[string]int64{
		"0": 0, "1": 1, "42": 42, "1000": 1000,
		"9223372036854775807": 1<<63 - 1,
	}
	for s, want := range good {
		if got, ok := Parse(s); !ok || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d, true", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "+1", "-1", "01", "00", " 1", "1 ", "1e3", "0x1", "1.0", "١", "9223372036854775808", "99999999999999999999"} {
		if got, ok := Parse(s); ok {
			t.Errorf("Parse(%q) = %d, true; want false", s, got)
		}
	}
}

// FuzzParse checks Parse against strconv: it accepts exactly the strings
// that strconv.FormatInt writes for non-negative int64s.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "7", "01", "+3", "-0", "9223372036854775807", "9223372036854775808", "12a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := Parse(s)
		n, err := strconv.ParseInt(s, 10, 64)
		canonical := err == nil && n >= 0 && strconv.FormatInt(n, 10) == s
		if ok != canonical || (ok && got != n) {
			t.Fatalf("Parse(%q) = %d, %v; strconv reads %d, %v (canonical %v)", s, got, ok, n, err, canonical)
		}
	})
}
