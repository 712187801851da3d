// Command floor measures what SSE writes over loopback cost on this
// machine with no server around them: the floors under stephub's idle,
// fan-out and cluster targets (see docs/performance.md).
//
//	go run ./cmd/floor idle    [-conns 15000] [-interval 15s] [-warmup 20s] [-window 45s]
//	go run ./cmd/floor fanout  [-conns 10000] [-rate 20] [-duration 20s]
//	go run ./cmd/floor cluster [-videos 500] [-subscribers 2000] [-followers 2] [-rate 2000] [-duration 30s] [-warmup 3s] [-posters 16]
//
// Each accepts loopback connections from a child process of its own (the
// read mode), which reads them all from two epoll loops as stephub-load
// does.
//
// idle writes ": ping\n\n" to each connection once every -interval, from
// one goroutine, each with one write(2) as stephub's heartbeat does, and
// prints the CPU time it spent over -window as a share of one core.
//
// fanout writes -rate events a second, each a frame of stephub's size
// stamped with its send time, to every connection, from one goroutine per
// CPU as stephub's SSE writers do: one write(2) per connection per turn,
// holding every frame queued since the last. It prints the latency from
// stamp to read that the child measured, and its own CPU per delivery.
//
// cluster is the floor under issue 18's cluster (see cluster.go): a
// writer process that stores each posted event in PostgreSQL and
// publishes it on core NATS, and -followers processes that write it to
// their SSE connections, each process doing only that. It prints the
// latency from an event's due time to its read, what was lost, and the
// CPU time of each process.
package main

import (
	"bufio"
	"cmp"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: floor idle|fanout|cluster [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	conns := fs.Int("conns", 0, "connections (default 15000 idle, 10000 fanout)")
	var err error
	switch os.Args[1] {
	case "idle":
		interval := fs.Duration("interval", 15*time.Second, "how often each connection is pinged")
		warmup := fs.Duration("warmup", 20*time.Second, "how long to ping before measuring")
		window := fs.Duration("window", 45*time.Second, "how long to measure")
		fs.Parse(os.Args[2:])
		err = idle(cmp.Or(*conns, 15000), *interval, *warmup, *window)
	case "fanout":
		rate := fs.Int("rate", 20, "events a second")
		duration := fs.Duration("duration", 20*time.Second, "how long to send")
		fs.Parse(os.Args[2:])
		err = fanout(cmp.Or(*conns, 10000), *rate, *duration)
	case "cluster":
		var c clusterConfig
		fs.IntVar(&c.videos, "videos", 500, "videos, numbered 1 and on")
		fs.IntVar(&c.subscribers, "subscribers", 2000, "SSE connections in all, spread over the followers, each watching one video")
		fs.IntVar(&c.followers, "followers", 2, "follower processes")
		fs.Float64Var(&c.rate, "rate", 2000, "events a second in all, round robin over the videos")
		fs.DurationVar(&c.duration, "duration", 30*time.Second, "how long to post")
		fs.DurationVar(&c.warmup, "warmup", 3*time.Second, "the start of -duration whose events are delivered and counted, not timed")
		fs.IntVar(&c.posters, "posters", 16, "concurrent keep-alive posters")
		fs.StringVar(&c.natsServer, "nats-server", "/usr/sbin/nats-server", "the nats-server to start on a free port")
		fs.Parse(os.Args[2:])
		err = cluster(c)
	case "write": // cluster's writer
		db := fs.String("db", "", "the database's URL")
		nats := fs.String("nats", "", "the NATS server's URL")
		fs.Parse(os.Args[2:])
		err = writer(*db, *nats)
	case "follow": // cluster's follower
		nats := fs.String("nats", "", "the NATS server's URL")
		videos := fs.Int("videos", 0, "videos; connection i watches video i%videos+1")
		fs.Parse(os.Args[2:])
		err = follow(*nats, *videos, *conns)
	case "read": // the child
		addr := fs.String("addr", "", "where to connect")
		hist := fs.Bool("hist", false, "print the latency histogram too")
		fs.Parse(os.Args[2:])
		err = read(*addr, *conns, *hist)
	default:
		err = fmt.Errorf("unknown mode %q: want idle, fanout or cluster", os.Args[1])
	}
	if err != nil {
		log.Fatal(err)
	}
}

// peers are the server's ends of the child's connections.
type peers struct {
	ln    net.Listener
	raws  []syscall.RawConn
	conns []net.Conn
	child *exec.Cmd
	out   *bufio.Reader // the child's standard output
}

// accept starts the reading child, with flags args, and accepts its n
// connections; it returns once the child has them all.
func accept(n int, args ...string) (*peers, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	args = append([]string{"read", "-addr", ln.Addr().String(), "-conns", fmt.Sprint(n)}, args...)
	p := &peers{ln: ln, child: exec.Command(os.Args[0], args...)}
	p.child.Stderr = os.Stderr
	stdout, err := p.child.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.out = bufio.NewReader(stdout)
	if err := p.child.Start(); err != nil {
		return nil, err
	}
	for range n {
		c, err := ln.Accept()
		if err != nil {
			p.close()
			return nil, err
		}
		raw, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			p.close()
			return nil, err
		}
		p.conns, p.raws = append(p.conns, c), append(p.raws, raw)
	}
	if line, err := p.out.ReadString('\n'); err != nil || line != "ready\n" {
		p.close()
		return nil, fmt.Errorf("the reader did not get ready: %q, %v", line, err)
	}
	return p, nil
}

// close ends the connections, which ends the child, and waits for it.
func (p *peers) close() {
	for _, c := range p.conns {
		c.Close()
	}
	p.ln.Close()
	p.child.Wait()
}

// write writes b to raw with one write(2), waiting if the socket is full.
func write(raw syscall.RawConn, b []byte) error {
	var werr error
	err := raw.Write(func(fd uintptr) bool {
		for len(b) > 0 {
			n, err := syscall.Write(int(fd), b)
			if err == syscall.EAGAIN {
				return false
			}
			if err != nil {
				werr = err
				return true
			}
			b = b[n:]
		}
		return true
	})
	if err != nil {
		return err
	}
	return werr
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func idle(conns int, interval, warmup, window time.Duration) error {
	p, err := accept(conns)
	if err != nil {
		return err
	}
	defer p.close()
	ping := []byte(": ping\n\n")
	// One tick a second, each pinging the connections due then, as
	// stephub's heartbeat goroutine does.
	ticks := max(int(interval/time.Second), 1)
	warmTicks := max(int(warmup/time.Second), 1)
	var start time.Time
	var before time.Duration
	for tick := 1; ; tick++ {
		time.Sleep(time.Second)
		for i := tick % ticks; i < len(p.raws); i += ticks {
			if err := write(p.raws[i], ping); err != nil {
				return err
			}
		}
		if tick == warmTicks {
			start, before = time.Now(), cpuTime()
		}
		if elapsed := time.Since(start); tick > warmTicks && elapsed >= window {
			cpu := cpuTime() - before
			fmt.Printf("connections=%d interval=%s pings/s=%.0f cpu=%s idle_cpu=%.2f%% of a core\n",
				conns, interval, float64(conns)/interval.Seconds(), cpu, 100*cpu.Seconds()/elapsed.Seconds())
			return nil
		}
	}
}

// frameData is an event of stephub's mock pipeline, for the size.
const frameData = `{"id":%d,"step":3,"total_steps":8,"message":"fanout floor","progress":33,` +
	`"status":"processing","eta_seconds":40,"at":"2026-11-27T00:00:00.000000Z","data":{"sent":%d}}`

func fanout(conns, rate int, duration time.Duration) error {
	p, err := accept(conns)
	if err != nil {
		return err
	}
	defer p.close()
	// The frames sent so far; each writer writes those it has not written
	// yet, to each of its connections, in one write.
	var (
		mu     sync.Mutex
		frames [][]byte
	)
	writers := runtime.GOMAXPROCS(0)
	wake := make([]chan struct{}, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	events := int(duration.Seconds() * float64(rate))
	for w := range writers {
		wake[w] = make(chan struct{}, 1)
		wg.Go(func() {
			var turn []byte
			for done := 0; done < events; {
				<-wake[w]
				mu.Lock()
				queued := frames[done:]
				done = len(frames)
				mu.Unlock()
				turn = turn[:0]
				for _, f := range queued {
					turn = append(turn, f...)
				}
				for i := w; i < len(p.raws); i += writers {
					if err := write(p.raws[i], turn); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	start, before := time.Now(), cpuTime()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	for id := 1; id <= events; id++ {
		<-tick.C
		frame := fmt.Appendf(nil, "id: %d\ndata: "+frameData+"\n\n", id, id, time.Now().UnixNano())
		mu.Lock()
		frames = append(frames, frame)
		mu.Unlock()
		for _, c := range wake {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
	tick.Stop()
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	cpu, elapsed := cpuTime()-before, time.Since(start)
	for _, c := range p.conns {
		c.Close() // the child reports once every connection has ended
	}
	result, err := p.out.ReadString('\n')
	if err != nil {
		return fmt.Errorf("the reader's result: %w", err)
	}
	deliveries := events * conns
	fmt.Printf("connections=%d rate=%d events=%d %s deliveries/s=%.0f cpu=%s cpu/delivery=%.2fµs\n",
		conns, rate, events, strings.TrimSpace(result), float64(deliveries)/elapsed.Seconds(),
		cpu.Round(time.Millisecond), float64(cpu.Microseconds())/float64(deliveries))
	return nil
}
