package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stephub/stephub/bench/internal/rawsock"
	"github.com/stephub/stephub/pipeline"
)

// sseReaders read every SSE subscriber of a run from a few epoll loops
// instead of a goroutine each, so that the load generator spends little of
// the CPU it shares with the server: one read system call takes everything a
// socket has, and no goroutine is woken per event.
type sseReaders struct {
	l     *load
	loops []*epollLoop
}

// epollLoop is one epoll instance and the connections it watches.
type epollLoop struct {
	ep    *rawsock.Epoll
	mu    sync.Mutex
	conns map[int]*sseConn
}

// sseConn is one subscriber's connection, read by a loop.
type sseConn struct {
	fd       int
	videoID  int64
	n        int
	sub      *subscriber
	pending  []byte // the start of a line not yet complete
	id       int64
	finished func()
}

const epollLoops = 2

func newSSEReaders(l *load) (*sseReaders, error) {
	r := &sseReaders{l: l}
	for range epollLoops {
		ep, err := rawsock.NewEpoll()
		if err != nil {
			for _, loop := range r.loops {
				loop.ep.Close()
			}
			return nil, err
		}
		r.loops = append(r.loops, &epollLoop{ep: ep, conns: make(map[int]*sseConn)})
	}
	return r, nil
}

// run reads the loops until ctx ends, then lets go of every connection.
func (r *sseReaders) run(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() {
		for _, loop := range r.loops {
			loop.ep.Close() // ends its Wait
		}
	})
	defer stop()
	var wg sync.WaitGroup
	for _, loop := range r.loops {
		wg.Go(func() { r.read(ctx, loop) })
	}
	wg.Wait()
	for _, loop := range r.loops {
		loop.mu.Lock()
		for fd, c := range loop.conns {
			syscall.Close(fd)
			c.finished()
		}
		loop.conns = nil
		loop.mu.Unlock()
		loop.ep.Close()
	}
}

// open connects subscriber n to a video's stream, resuming after the last
// id it saw, and hands the connection to a loop.
func (r *sseReaders) open(ctx context.Context, c *sseConn) error {
	host := strings.TrimPrefix(r.l.watchURL(c.n), "http://")
	conn, err := r.l.netDialers[c.n%len(r.l.netDialers)].DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	defer conn.Close() // the loop reads a duplicate of its descriptor
	req := fmt.Sprintf("GET /api/v1/videos/%d/stream?token=%s HTTP/1.1\r\nHost: %s\r\n", c.videoID, r.l.token, host)
	if c.sub.last > 0 {
		req += fmt.Sprintf("Last-Event-ID: %d\r\n", c.sub.last)
	}
	if _, err := conn.Write([]byte(req + "\r\n")); err != nil {
		return err
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.Contains(status, " 200 ") {
		return fmt.Errorf("stream: %s", strings.TrimSpace(status))
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			break
		}
	}
	// What bufio read past the head is the stream's start.
	c.pending, _ = br.Peek(br.Buffered())
	c.pending = append([]byte(nil), c.pending...)
	fd, err := rawsock.Dup(conn.(*net.TCPConn))
	if err != nil {
		return err
	}
	c.fd = fd
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return err
	}
	if r.process(c, nil) { // the head's leftovers held the end already
		syscall.Close(fd)
		c.finished()
		return nil
	}
	loop := r.loops[c.n%len(r.loops)]
	loop.mu.Lock()
	if loop.conns == nil {
		loop.mu.Unlock()
		syscall.Close(fd)
		return errors.New("the run is over")
	}
	loop.conns[fd] = c
	loop.mu.Unlock()
	return loop.ep.Add(fd)
}

func (r *sseReaders) read(ctx context.Context, loop *epollLoop) {
	events := make([]syscall.EpollEvent, 256)
	ready := make([]*sseConn, 0, len(events))
	buf := make([]byte, 256<<10)
	for ctx.Err() == nil {
		n, err := loop.ep.Wait(events)
		if err != nil {
			return
		}
		ready = ready[:0]
		loop.mu.Lock()
		for _, ev := range events[:n] {
			if c := loop.conns[int(ev.Fd)]; c != nil {
				ready = append(ready, c)
			}
		}
		loop.mu.Unlock()
		for _, c := range ready {
			if end, gone := r.drain(c, buf); end || gone {
				loop.ep.Remove(c.fd)
				loop.mu.Lock()
				delete(loop.conns, c.fd)
				loop.mu.Unlock()
				syscall.Close(c.fd)
				if end {
					c.finished()
				} else {
					go r.reconnect(ctx, c)
				}
			}
		}
	}
}

// drain reads what the socket holds; end reports the terminal event, gone
// a connection that closed before it. A read that does not fill buf has
// taken everything there was: rather than a second read to learn that
// (EAGAIN), which would double the loop's system calls, the level-triggered
// epoll reports the socket again if more came meanwhile.
func (r *sseReaders) drain(c *sseConn, buf []byte) (end, gone bool) {
	for {
		n, err := syscall.Read(c.fd, buf)
		if n > 0 && r.process(c, buf[:n]) {
			return true, false
		}
		switch {
		case errors.Is(err, syscall.EAGAIN):
			return false, false
		case errors.Is(err, syscall.EINTR):
		case err != nil || n == 0:
			return false, true
		case n < len(buf):
			return false, false
		}
	}
}

// process consumes data, line by line, and reports whether the terminal
// event came.
func (r *sseReaders) process(c *sseConn, data []byte) (terminal bool) {
	if len(c.pending) > 0 {
		data = append(c.pending, data...)
		c.pending = nil
	}
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if len(data) > 0 {
				c.pending = append([]byte(nil), data...)
			}
			return false
		}
		line := data[:i]
		data = data[i+1:]
		switch {
		case bytes.HasPrefix(line, []byte("id: ")):
			c.id, _ = strconv.ParseInt(string(line[4:]), 10, 64)
		case bytes.HasPrefix(line, []byte("data: ")):
			if c.sub.deliver(c.id, line) {
				return true
			}
		}
	}
}

// reconnect opens the connection again after the server dropped it.
func (r *sseReaders) reconnect(ctx context.Context, c *sseConn) {
	r.l.reconnects.Add(1)
	for pipeline.Sleep(ctx, 100*time.Millisecond) {
		c.pending, c.id = nil, 0
		if err := r.open(ctx, c); err == nil {
			return
		}
	}
	c.finished()
}
