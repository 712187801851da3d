package jobs_test

import (
	"testing"

	"github.com/stephub/stephub/internal/leakcheck"
)

// TestMain fails the package if a goroutine outlives its test, such as a
// mock job the Service did not stop.
func TestMain(m *testing.M) { leakcheck.Main(m) }
