package transport_test

import (
	"testing"

	"github.com/stephub/stephub/internal/leakcheck"
)

// TestMain fails the package if a goroutine outlives its test: every stream
// and server the tests start must end completely.
func TestMain(m *testing.M) { leakcheck.Main(m) }
