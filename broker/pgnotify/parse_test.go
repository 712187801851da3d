package pgnotify

import (
	"reflect"
	"testing"

	"github.com/stephub/stephub/jobs"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		payload string
		node    string
		notices []jobs.Notice
	}{
		// What nodes sent before hints were batched: one hint.
		{"ab12 5 7 true", "ab12", []jobs.Notice{{VideoID: 5, Seq: 7, Terminal: true}}},
		{"ab12 1 2 false 3 4 true", "ab12", []jobs.Notice{{VideoID: 1, Seq: 2}, {VideoID: 3, Seq: 4, Terminal: true}}},
	} {
		node, notices, err := parse(tc.payload)
		if err != nil || node != tc.node || !reflect.DeepEqual(notices, tc.notices) {
			t.Errorf("parse(%q) = %q, %+v, %v; want %q, %+v", tc.payload, node, notices, err, tc.node, tc.notices)
		}
	}
	for _, bad := range []string{"", "ab12", "ab12 1 2", "ab12 1 2 true 3", "ab12 x 2 true", "ab12 1 y true", "ab12 1 2 maybe"} {
		if _, _, err := parse(bad); err == nil {
			t.Errorf("parse(%q) took it", bad)
		}
	}
}
