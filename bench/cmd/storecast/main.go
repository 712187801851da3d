// Command storecast is a bare SSE broadcaster that does the one thing
// stephub must do and a plain broadcaster does not: store every event
// before it is sent. Each published event is inserted into SQLite (the
// same driver and settings as stephub's default: WAL, synchronous=FULL, so
// every commit waits for the disk), the events that arrive while a commit
// runs share the next one, and only once its commit is on disk is the
// event written to the topic's subscribers. No auth, no video state, no
// hub: its latency is the floor under stephub's stored fan-out.
//
// It speaks the routes of the team's bare broadcaster, so the same load
// generator drives both:
//
//	GET  /sse?topic=T     text/event-stream; each event is "data: <json>\n\n"
//	POST /publish         body {"topic": "T", "data": <json>}; 200 once stored and sent
//	GET  /healthz         200
package main

import (
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	_ "modernc.org/sqlite"
)

// maxGroup bounds how many events share one commit, as stephub's does.
const maxGroup = 64

type topic struct {
	mu   sync.Mutex
	seq  int64
	subs map[chan []byte]struct{}
}

type server struct {
	mu     sync.Mutex
	topics map[string]*topic
	writes chan *write
	ping   time.Duration
}

// write is one event waiting for its commit.
type write struct {
	topic string
	data  []byte
	done  chan error
}

func (s *server) topic(name string) *topic {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.topics[name]
	if t == nil {
		t = &topic{subs: make(map[chan []byte]struct{})}
		s.topics[name] = t
	}
	return t
}

// commit stores the writes that queue, in groups of up to maxGroup, one
// transaction each, and tells each writer once its group is on disk.
func (s *server) commit(db *sql.DB) {
	group := make([]*write, 0, maxGroup)
	for w := range s.writes {
		group = append(group[:0], w)
	more:
		for len(group) < maxGroup {
			select {
			case w := <-s.writes:
				group = append(group, w)
			default:
				break more
			}
		}
		err := s.store(db, group)
		for _, w := range group {
			w.done <- err
		}
	}
}

func (s *server) store(db *sql.DB, group []*write) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, w := range group {
		t := s.topic(w.topic)
		t.mu.Lock()
		t.seq++
		seq := t.seq
		t.mu.Unlock()
		if _, err := tx.Exec("INSERT INTO events (topic, seq, data) VALUES (?, ?, ?)", w.topic, seq, w.data); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (s *server) handlePublish(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Topic string          `json:"topic"`
		Data  json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil || req.Topic == "" {
		http.Error(w, "want {\"topic\": ..., \"data\": ...}", http.StatusBadRequest)
		return
	}
	wr := &write{topic: req.Topic, data: req.Data, done: make(chan error, 1)}
	s.writes <- wr
	if err := <-wr.done; err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	frame := append(append([]byte("data: "), req.Data...), "\n\n"...)
	t := s.topic(req.Topic)
	n := 0
	t.mu.Lock()
	for c := range t.subs {
		select {
		case c <- frame:
			n++
		default: // a slow subscriber misses it; the load generator counts it lost
		}
	}
	t.mu.Unlock()
	fmt.Fprintf(w, `{"delivered":%d}`, n)
}

func (s *server) handleSSE(w http.ResponseWriter, r *http.Request) {
	t := s.topic(r.URL.Query().Get("topic"))
	c := make(chan []byte, 256)
	t.mu.Lock()
	t.subs[c] = struct{}{}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.subs, c)
		t.mu.Unlock()
	}()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(": ok\n\n"))
	rc.Flush()
	tick := time.NewTicker(s.ping)
	defer tick.Stop()
	for {
		select {
		case frame := <-c:
			w.Write(frame)
			for more := true; more; {
				select {
				case frame := <-c:
					w.Write(frame)
				default:
					more = false
				}
			}
			if rc.Flush() != nil {
				return
			}
		case <-tick.C:
			w.Write([]byte(": ping\n\n"))
			rc.Flush()
		case <-r.Context().Done():
			return
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8200", "listen address (keep it on loopback)")
	path := flag.String("db", "storecast.db", "the SQLite file")
	ping := flag.Duration("ping", 15*time.Second, "SSE comment interval")
	flag.Parse()

	db, err := sql.Open("sqlite", "file:"+*path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate")
	if err != nil {
		log.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS events (topic TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (topic, seq))"); err != nil {
		log.Fatal(err)
	}
	s := &server{topics: make(map[string]*topic), writes: make(chan *write, 1024), ping: *ping}
	go s.commit(db)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /sse", s.handleSSE)
	mux.HandleFunc("POST /publish", s.handlePublish)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("storecast listening on %s", ln.Addr())
	log.Fatal((&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln))
}
