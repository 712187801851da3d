package transport

import (
	"runtime"
	"sync"
)

// writerPool runs the streams of plain sockets whose turn has come, on up
// to one goroutine per CPU. A broadcast to thousands of streams is
// thousands of socket writes: woken one goroutine per stream, they would
// all queue on the scheduler at each event, ahead of the requests that
// bring the next events, so that ingest stalls behind fan-out and every
// write carries a single event. A stream queued here instead collects
// whatever came while it waited and writes it in one system call, so the
// busier the server, the larger its writes. The pool never waits on a
// peer (stream.run without wait); its goroutines start when streams are
// queued and exit when none is left.
type writerPool struct {
	live    *liveGroup
	mu      sync.Mutex
	queue   []*stream
	head    int // queue[head:] waits
	workers int
	max     int // workers allowed
}

// poolChunk is how many streams a worker takes from the queue at once.
const poolChunk = 64

func (p *writerPool) push(s *stream) {
	p.mu.Lock()
	p.queue = append(p.queue, s)
	if p.workers == 0 {
		// Read once a burst: GOMAXPROCS takes the scheduler's lock.
		p.max = runtime.GOMAXPROCS(0)
	}
	start := p.workers < p.max
	if start {
		p.workers++
	}
	p.mu.Unlock()
	if start {
		p.live.goLive(p.work)
	}
}

func (p *writerPool) work() {
	chunk := make([]*stream, 0, poolChunk)
	for {
		chunk = chunk[:0]
		p.mu.Lock()
		n := min(len(p.queue)-p.head, poolChunk)
		if n == 0 {
			p.queue, p.head = p.queue[:0], 0
			p.workers--
			p.mu.Unlock()
			return
		}
		chunk = append(chunk, p.queue[p.head:p.head+n]...)
		clear(p.queue[p.head : p.head+n])
		p.head += n
		if p.head > len(p.queue)/2 {
			// Slide the waiting streams to the front, so that a queue that
			// never empties does not grow.
			m := copy(p.queue, p.queue[p.head:])
			clear(p.queue[m:])
			p.queue, p.head = p.queue[:m], 0
		}
		p.mu.Unlock()
		for _, s := range chunk {
			s.runPooled()
		}
	}
}
