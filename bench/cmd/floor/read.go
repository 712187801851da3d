package main

import (
	"bytes"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/stephub/stephub/bench/internal/latency"
	"github.com/stephub/stephub/bench/internal/rawsock"
)

// read is the child: it opens n connections to addr over 127.0.0.2–9,
// says "ready", reads them from two epoll loops until the server has
// closed them all, and prints how many frames came and their latency;
// with hist, a second line holds the latency histogram (as
// latency.Histogram's MarshalText writes it).
func read(addr string, n int, hist bool) error {
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
	frames := 0
	for _, r := range loops {
		total.Merge(&r.lat)
		frames += r.frames
	}
	fmt.Printf("frames=%d deliveries=%d p50=%s p99=%s max=%s\n", frames, total.Count(), total.Quantile(0.50), total.Quantile(0.99), total.Max())
	if hist {
		text, _ := total.MarshalText()
		fmt.Printf("%s\n", text)
	}
	return nil
}

// reader is one epoll loop, the frames it read and their latency.
type reader struct {
	ep     *rawsock.Epoll
	open   int
	lat    latency.Histogram
	frames int    // frames ended, timed or not (a frame ends with "\n\n")
	nl     []bool // by fd: whether the last read ended with '\n'
}

// count counts the frames that end in data, a read of fd.
func (r *reader) count(fd int, data []byte) {
	if fd >= len(r.nl) {
		r.nl = append(r.nl, make([]bool, fd+1-len(r.nl))...)
	}
	r.frames += bytes.Count(data, []byte("\n\n"))
	if r.nl[fd] && data[0] == '\n' { // a frame's end split between reads
		r.frames++
	}
	r.nl[fd] = data[len(data)-1] == '\n'
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
				if fd < len(r.nl) { // it may have had no frame
					r.nl[fd] = false
				}
				r.open--
				continue
			}
			// Frames are not split across reads often enough to
			// matter; one that is counts where its stamp ends up.
			now := time.Now().UnixNano()
			r.count(fd, buf[:m])
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
