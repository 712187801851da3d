package main

import (
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/stephub/stephub/bench/internal/latency"
	"github.com/stephub/stephub/bench/internal/rawsock"
)

// read is the child: it opens n connections to addr over 127.0.0.2–9,
// says "ready", reads them from two epoll loops until the server has
// closed them all, and prints how many frames came and their latency.
func read(addr string, n int) error {
	loops := [2]*reader{}
	for i := range loops {
		ep, err := rawsock.NewEpoll()
		if err != nil {
			return err
		}
		defer ep.Close()
		loops[i] = &reader{ep: ep}
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
		if err := r.ep.Add(fd); err != nil {
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
	var total latency.Histogram
	for range loops {
		<-done
	}
	for _, r := range loops {
		total.Merge(&r.lat)
	}
	fmt.Printf("deliveries=%d p50=%s p99=%s max=%s\n", total.Count(), total.Quantile(0.50), total.Quantile(0.99), total.Max())
	return nil
}

// reader is one epoll loop and the latency of what it read.
type reader struct {
	ep   *rawsock.Epoll
	open int
	lat  latency.Histogram
}

func (r *reader) run() {
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 256<<10)
	for r.open > 0 {
		n, err := r.ep.Wait(events)
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
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
				sent, rest, ok := latency.Stamp(data)
				if !ok {
					break
				}
				r.lat.Record(time.Duration(now - sent))
				data = rest
			}
		}
	}
}
