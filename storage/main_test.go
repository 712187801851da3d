package storage_test

import (
	"testing"

	"github.com/stephub/stephub/internal/leakcheck"
)

// TestMain fails the package if a goroutine outlives its test, such as a
// store that was never closed.
func TestMain(m *testing.M) { leakcheck.Main(m) }
