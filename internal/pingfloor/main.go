// Command pingfloor measures what idle SSE heartbeats cost on this machine
// with nothing else in the way, as the floor for stephub's idle target (see
// the README's Performance section). It accepts -conns loopback
// connections from a child process of its own, writes ": ping\n\n" to each
// once every -interval from one goroutine, each with one write(2) as
// stephub's heartbeat does, and prints the CPU time it spent over -window
// as a share of one core.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	conns := flag.Int("conns", 15000, "connections to hold")
	interval := flag.Duration("interval", 15*time.Second, "how often each connection is pinged")
	warmup := flag.Duration("warmup", 20*time.Second, "how long to ping before measuring")
	window := flag.Duration("window", 45*time.Second, "how long to measure")
	dial := flag.String("dial", "", "run as the client: connect -conns times to this address and read")
	flag.Parse()
	log.SetFlags(0)
	if *dial != "" {
		readAll(*dial, *conns)
		return
	}
	if err := measure(*conns, *interval, *warmup, *window); err != nil {
		log.Fatal(err)
	}
}

// measure runs the pinging side and prints its CPU share.
func measure(conns int, interval, warmup, window time.Duration) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	client := exec.Command(os.Args[0], "-dial", ln.Addr().String(), "-conns", fmt.Sprint(conns))
	client.Stdout, client.Stderr = os.Stdout, os.Stderr
	if err := client.Start(); err != nil {
		return err
	}
	defer func() {
		client.Process.Kill()
		client.Wait()
	}()
	raws := make([]syscall.RawConn, 0, conns)
	for range conns {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		defer c.Close()
		raw, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			return err
		}
		raws = append(raws, raw)
	}
	ping := []byte(": ping\n\n")
	write := func(fd uintptr) bool {
		syscall.Write(int(fd), ping)
		return true
	}
	// One tick a second, each pinging the connections due then, as
	// stephub's heartbeat goroutine does.
	ticks := max(int(interval/time.Second), 1)
	warmTicks := max(int(warmup/time.Second), 1)
	var start time.Time
	var before syscall.Rusage
	for tick := 1; ; tick++ {
		time.Sleep(time.Second)
		for i := tick % ticks; i < len(raws); i += ticks {
			if err := raws[i].Write(write); err != nil {
				return err
			}
		}
		if tick == warmTicks {
			start = time.Now()
			syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		}
		if elapsed := time.Since(start); tick > warmTicks && elapsed >= window {
			var after syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
			fmt.Printf("connections=%d interval=%s pings/s=%.0f cpu=%s idle_cpu=%.2f%% of a core\n",
				conns, interval, float64(conns)/interval.Seconds(), cpu, 100*cpu.Seconds()/elapsed.Seconds())
			return nil
		}
	}
}

// readAll opens n connections to addr over 127.0.0.2–9 and reads them
// until the process is killed.
func readAll(addr string, n int) {
	for i := range n {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%8))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			buf := make([]byte, 64)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	select {}
}
