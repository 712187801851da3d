package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stephub/stephub/auth"
	"github.com/stephub/stephub/bench/internal/latency"
)

// load is one run: its clients, one per source address, and what the
// subscribers have counted.
type load struct {
	cfg config
	log io.Writer
	// One of each per source address, 127.0.0.2 and on.
	netDialers []*net.Dialer
	clients    []*http.Client
	dialers    []*websocket.Dialer
	token      string

	received   atomic.Int64 // events delivered, without repeats
	reconnects atomic.Int64
	// latency is sharded by subscriber: thousands of readers recording
	// similar latencies into one set of counters would queue on them.
	latency [latencyShards]latency.Histogram
}

const latencyShards = 32

func newLoad(cfg config, log io.Writer) *load {
	l := &load{cfg: cfg, log: log}
	for i := range cfg.SourceIPs {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}, Timeout: 10 * time.Second}
		l.netDialers = append(l.netDialers, d)
		l.clients = append(l.clients, &http.Client{Transport: &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConnsPerHost: cfg.Posters,
			DisableCompression:  true,
		}})
		l.dialers = append(l.dialers, &websocket.Dialer{NetDialContext: d.DialContext, HandshakeTimeout: 10 * time.Second})
	}
	return l
}

// result is what a run prints.
type result struct {
	cfg                  config
	connections          int
	events, expected     int64
	received, reconnects int64
	window               time.Duration
	latency              *[latencyShards]latency.Histogram
	cpu                  time.Duration
	rssBefore, rssAfter  int64 // bytes, before and after connecting
	rssEnd               int64 // bytes, at the end of the run
	rssPeak              int64
	steal                float64 // the share of the machine's CPU stolen by the host
}

func (r result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "transport=%s videos=%d connections=%d events=%d deliveries=%d lost=%d reconnects=%d",
		r.cfg.Transport, r.cfg.Videos, r.connections, r.events, r.received, r.expected-r.received, r.reconnects)
	secs := r.window.Seconds()
	if r.events > 0 {
		var all latency.Histogram
		for i := range r.latency {
			all.Merge(&r.latency[i])
		}
		fmt.Fprintf(&b, " deliveries/s=%.0f p50=%s p99=%s max=%s", float64(r.received)/secs,
			all.Quantile(0.50), all.Quantile(0.99), all.Max())
	}
	if r.cfg.PID > 0 {
		fmt.Fprintf(&b, " server_cpu=%.2fs", r.cpu.Seconds())
		if r.received > 0 && r.events > 0 {
			fmt.Fprintf(&b, " cpu/delivery=%.2fµs", float64(r.cpu.Microseconds())/float64(r.received))
		} else {
			fmt.Fprintf(&b, " idle_cpu=%.2f%%", 100*r.cpu.Seconds()/secs)
		}
		fmt.Fprintf(&b, " rss_peak=%.1fMiB", float64(r.rssPeak)/(1<<20))
		if n := float64(r.connections); n > 0 {
			// Right after connecting, the heap still holds the garbage of
			// the handshakes; at the end of an idle hold it holds what the
			// connections keep.
			fmt.Fprintf(&b, " rss/conn=%.1fKiB", float64(r.rssAfter-r.rssBefore)/n/1024)
			if r.events == 0 {
				fmt.Fprintf(&b, " rss/conn_after_hold=%.1fKiB", float64(r.rssEnd-r.rssBefore)/n/1024)
			}
		}
	}
	fmt.Fprintf(&b, " steal=%.1f%%", 100*r.steal)
	return b.String()
}

// watchURL is where subscriber n connects: the subscribers of a video,
// every Videos-th one, take the -watch URLs in turn.
func (l *load) watchURL(n int) string {
	return l.cfg.Watch[n/l.cfg.Videos%len(l.cfg.Watch)]
}

func (l *load) logf(format string, args ...any) { fmt.Fprintf(l.log, format+"\n", args...) }

func (l *load) run(ctx context.Context) (result, error) {
	res := result{cfg: l.cfg, latency: &l.latency}
	defer func() {
		for _, c := range l.clients {
			c.CloseIdleConnections()
		}
	}()
	if err := l.prepareUser(ctx); err != nil {
		return res, err
	}
	videos, err := l.createVideos(ctx)
	if err != nil {
		return res, err
	}
	before, err := readProc(l.cfg.PID)
	if err != nil {
		return res, err
	}

	subCtx, stopSubs := context.WithCancel(ctx)
	defer stopSubs()
	var subs sync.WaitGroup
	connected := make(chan error, l.cfg.Subscribers)
	perVideo := make([]int, len(videos))
	readers, err := newSSEReaders(l)
	if err != nil {
		return res, err
	}
	var readersDone sync.WaitGroup
	readersDone.Go(func() { readers.run(subCtx) })
	defer readersDone.Wait()
	dialing := make(chan struct{}, 64) // connections being opened at once
	for i := range l.cfg.Subscribers {
		v := i % len(videos)
		perVideo[v]++
		subs.Add(1)
		if l.cfg.Transport == "ws" || (l.cfg.Transport == "mixed" && i%2 == 1) {
			go func() {
				defer subs.Done()
				l.subscribeWS(subCtx, i, videos[v], connected)
			}()
			continue
		}
		sub := &subscriber{hist: &l.latency[i%latencyShards]}
		var once sync.Once
		c := &sseConn{videoID: videos[v], n: i, sub: sub, finished: func() {
			once.Do(func() {
				l.received.Add(sub.received)
				subs.Done()
			})
		}}
		go func() {
			dialing <- struct{}{}
			err := readers.open(subCtx, c)
			<-dialing
			if err != nil {
				c.finished()
			}
			connected <- err
		}()
	}
	for range l.cfg.Subscribers {
		if err := <-connected; err != nil {
			return res, fmt.Errorf("subscriber: %w", err)
		}
	}
	res.connections = l.cfg.Subscribers
	l.logf("%d subscribers connected", res.connections)
	connectedProc, err := readProc(l.cfg.PID)
	if err != nil {
		return res, err
	}
	res.rssBefore, res.rssAfter = before.rss, connectedProc.rss
	cpuBefore, err := readCPUTimes()
	if err != nil {
		return res, err
	}

	start := time.Now()
	var posted []int64
	if l.cfg.Rate > 0 {
		if posted, err = l.post(ctx, videos); err != nil {
			return res, err
		}
		for v, n := range posted {
			res.events += n
			res.expected += (n + 1) * int64(perVideo[v]) // and the terminal event
		}
		if err := l.finish(ctx, videos); err != nil {
			return res, err
		}
		done := make(chan struct{})
		go func() { subs.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(l.cfg.Settle):
			l.logf("some subscribers still waiting after %s", l.cfg.Settle)
		case <-ctx.Done():
			return res, ctx.Err()
		}
	} else {
		select { // an idle run: hold the connections
		case <-time.After(l.cfg.Duration):
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	res.window = time.Since(start)
	after, err := readProc(l.cfg.PID)
	if err != nil {
		return res, err
	}
	cpuAfter, err := readCPUTimes()
	if err != nil {
		return res, err
	}
	res.steal = stealShare(cpuBefore, cpuAfter)
	stopSubs()
	subs.Wait()
	res.cpu = after.cpu - connectedProc.cpu
	res.rssPeak, res.rssEnd = after.rssPeak, after.rss
	res.received, res.reconnects = l.received.Load(), l.reconnects.Load()
	return res, nil
}

// api sends a JSON request and decodes a JSON answer into out.
func (l *load) api(ctx context.Context, method, path, token string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, l.cfg.Server+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := l.clients[0].Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, answer)
	}
	if out != nil {
		return json.Unmarshal(answer, out)
	}
	return nil
}

// prepareUser signs a token for a load user and gives it the credits for
// every video.
func (l *load) prepareUser(ctx context.Context) error {
	signer, err := auth.NewSigner(l.cfg.JWTSecret)
	if err != nil {
		return err
	}
	user := fmt.Sprintf("load-%d", time.Now().UnixNano())
	if l.token, err = signer.Issue(user, "", 24*time.Hour); err != nil {
		return err
	}
	return l.api(ctx, "PUT", "/api/v1/admin/users/"+user, l.cfg.AdminToken, map[string]any{"credits": 100 * l.cfg.Videos}, nil)
}

func (l *load) createVideos(ctx context.Context) ([]int64, error) {
	ids := make([]int64, l.cfg.Videos)
	for i := range ids {
		var v struct{ ID int64 }
		if err := l.api(ctx, "POST", "/api/v1/videos/generate", l.token,
			map[string]string{"prompt": "load test video number " + strconv.Itoa(i), "model": "sora-2"}, &v); err != nil {
			return nil, err
		}
		ids[i] = v.ID
	}
	return ids, nil
}

// post sends rate×duration events, round robin over the videos, each at its
// due time, from Posters goroutines; it returns how many each video got.
func (l *load) post(ctx context.Context, videos []int64) ([]int64, error) {
	total := int(l.cfg.Rate * l.cfg.Duration.Seconds())
	due := make(chan int, l.cfg.Posters)
	posted := make([]atomic.Int64, len(videos))
	var errOnce sync.Once
	var postErr error
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Duration(float64(time.Second) / l.cfg.Rate)
	for p := range l.cfg.Posters {
		client := l.clients[p%len(l.clients)]
		wg.Go(func() {
			for i := range due {
				v := i % len(videos)
				// Stamped with when it was due, not when a poster got to
				// it: a server that holds the posters up is not let off
				// the time its events wait to be sent.
				sent := start.Add(time.Duration(i) * interval)
				body := fmt.Sprintf(`{"step":1,"message":"load","progress":1,"data":{"sent":%d}}`, sent.UnixNano())
				if sent.Before(start.Add(l.cfg.Warmup)) {
					body = `{"step":1,"message":"warm-up","progress":1}` // delivered and counted, not timed
				}
				if err := l.postEvent(ctx, client, videos[v], body); err != nil {
					errOnce.Do(func() { postErr = err })
					continue
				}
				posted[v].Add(1)
			}
		})
	}
	for i := range total {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		if ctx.Err() != nil {
			break
		}
		due <- i
	}
	close(due)
	wg.Wait()
	if postErr != nil {
		return nil, postErr
	}
	counts := make([]int64, len(videos))
	for i := range posted {
		counts[i] = posted[i].Load()
	}
	return counts, ctx.Err()
}

// finish completes every video, which ends its streams.
func (l *load) finish(ctx context.Context, videos []int64) error {
	for _, id := range videos {
		if err := l.postEvent(ctx, l.clients[0], id, `{"step":9,"message":"done","progress":100,"status":"completed","video_url":"/uploads/videos/mock-video.mp4"}`); err != nil {
			return err
		}
	}
	return nil
}

func (l *load) postEvent(ctx context.Context, client *http.Client, videoID int64, body string) error {
	req, err := http.NewRequestWithContext(ctx, "POST", fmt.Sprintf("%s/api/v1/videos/%d/events", l.cfg.Server, videoID), strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+l.cfg.WorkerToken)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		answer, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("post event: %d %s", resp.StatusCode, answer)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// subscribeWS watches one video over WebSocket until its terminal event,
// reconnecting from the last id it saw when the server drops it. It reports
// on connected once, when its first connection is open. (SSE subscribers
// are read by sseReaders.)
func (l *load) subscribeWS(ctx context.Context, n int, videoID int64, connected chan<- error) {
	sub := &subscriber{hist: &l.latency[n%latencyShards]}
	defer func() { l.received.Add(sub.received) }()
	first := true
	for ctx.Err() == nil {
		done, err := l.watchWS(ctx, n, videoID, sub, &first, connected)
		if done {
			return
		}
		if first { // never connected
			connected <- err
			return
		}
		if ctx.Err() != nil {
			return // the run is over
		}
		l.reconnects.Add(1)
		time.Sleep(100 * time.Millisecond)
	}
}

// opened reports the first successful connection.
func opened(first *bool, connected chan<- error) {
	if *first {
		*first = false
		connected <- nil
	}
}

func (l *load) watchWS(ctx context.Context, n int, videoID int64, sub *subscriber, first *bool, connected chan<- error) (done bool, err error) {
	url := fmt.Sprintf("ws%s/api/v1/videos/%d/ws?token=%s&last_event_id=%d", strings.TrimPrefix(l.watchURL(n), "http"), videoID, l.token, sub.last)
	conn, _, err := l.dialers[n%len(l.dialers)].DialContext(ctx, url, nil)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	opened(first, connected)
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure {
				return true, nil
			}
			return false, err
		}
		// The id leads each event: {"id":N,…
		id, _ := strconv.ParseInt(string(bytes.TrimPrefix(data[:bytes.IndexByte(data, ',')], []byte(`{"id":`))), 10, 64)
		if sub.deliver(id, data) {
			return true, nil
		}
	}
}

// subscriber is one reader's count of what it received.
type subscriber struct {
	last     int64 // the id of the last event received
	received int64
	hist     *latency.Histogram
}

// deliver counts event id unless it was seen, records its latency, and
// reports whether it is the terminal event. The run's step events carry
// their send time; only the closing event, which carries none, is looked
// at for its status, so most deliveries scan their line once.
func (sub *subscriber) deliver(id int64, data []byte) (terminal bool) {
	if id <= sub.last {
		return false
	}
	sub.last = id
	sub.received++
	sent, _, ok := latency.Stamp(data)
	if !ok {
		return bytes.Contains(data, []byte(`"status":"completed"`))
	}
	sub.hist.Record(time.Duration(time.Now().UnixNano() - sent))
	return false
}
