package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/stephub/stephub/internal/rawsock"
)

// read is the child: it opens n connections to addr over 127.0.0.2–9,
// says "ready", reads them from two epoll loops until the server has
// closed them all, and prints how many frames came and their latency.
func read(addr string, n int) error {
	loops := [2]*reader{}
	for i := range loops {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return err
		}
		loops[i] = &reader{epfd: fd}
	}
	for i := range n {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%8))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return err
		}
		fd, err := rawsock.Dup(c.(*net.TCPConn))
		c.Close()
		if err != nil {
			return err
		}
		syscall.SetNonblock(fd, true)
		r := loops[i%len(loops)]
		r.open++
		if err := syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}); err != nil {
			return err
		}
	}
	fmt.Println("ready")
	done := make(chan struct{}, len(loops))
	for _, r := range loops {
		go func() {
			r.run()
			done <- struct{}{}
		}()
	}
	var total latencies
	for range loops {
		<-done
	}
	for _, r := range loops {
		total.add(&r.lat)
	}
	fmt.Printf("deliveries=%d p50=%s p99=%s max=%s\n", total.n, total.quantile(0.50), total.quantile(0.99), total.max)
	return nil
}

// reader is one epoll loop and the latency of what it read.
type reader struct {
	epfd int
	open int
	lat  latencies
}

var sentKey = []byte(`"sent":`)

func (r *reader) run() {
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 256<<10)
	for r.open > 0 {
		n, err := syscall.EpollWait(r.epfd, events, -1)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			return
		}
		for _, ev := range events[:max(n, 0)] {
			fd := int(ev.Fd)
			m, err := syscall.Read(fd, buf)
			if m <= 0 {
				if err == syscall.EAGAIN {
					continue
				}
				syscall.Close(fd)
				r.open--
				continue
			}
			// Frames are not split across reads often enough to
			// matter; one that is counts where its stamp ends up.
			now := time.Now().UnixNano()
			for data := buf[:m]; ; {
				i := bytes.Index(data, sentKey)
				if i < 0 {
					break
				}
				data = data[i+len(sentKey):]
				var sent int64
				for len(data) > 0 && data[0] >= '0' && data[0] <= '9' {
					sent = sent*10 + int64(data[0]-'0')
					data = data[1:]
				}
				r.lat.record(time.Duration(now - sent))
			}
		}
	}
}

// latencies is a histogram of 100 µs buckets up to 10 s.
type latencies struct {
	buckets [100000]int64
	n       int64
	max     time.Duration
}

const bucket = 100 * time.Microsecond

func (l *latencies) record(d time.Duration) {
	l.buckets[min(max(int(d/bucket), 0), len(l.buckets)-1)]++
	l.n++
	l.max = max(l.max, d)
}

func (l *latencies) add(o *latencies) {
	for i, c := range o.buckets {
		l.buckets[i] += c
	}
	l.n += o.n
	l.max = max(l.max, o.max)
}

// quantile is the upper bound of the bucket that holds quantile q.
func (l *latencies) quantile(q float64) time.Duration {
	want := int64(q * float64(l.n))
	var seen int64
	for i, c := range l.buckets {
		seen += c
		if seen > want {
			return time.Duration(i+1) * bucket
		}
	}
	return l.max
}
