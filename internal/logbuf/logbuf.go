// Package logbuf is a log destination for tests: the code under test writes
// it from its goroutines while the test reads it.
package logbuf

import (
	"bytes"
	"sync"
)

// Buffer collects what is written to it. It is safe for concurrent use; the
// zero value is ready.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
