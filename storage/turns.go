package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// turns runs work in groups, one group at a time: the items that arrive
// while a group runs wait together and make up the next one, up to max.
// No goroutine of its own runs the groups: the first waiting caller does,
// then hands the turn to the next one waiting.
type turns[T any] struct {
	max int
	// run runs one group and returns each item's error, in order.
	run func(group []T) []error

	mu      sync.Mutex
	queue   []*waiter[T]
	running bool // a caller is running a group; the queue waits for the next
}

// waiter is one caller's item, waiting for its group.
type waiter[T any] struct {
	ctx  context.Context
	item T
	done chan outcome // receives exactly one outcome
}

// outcome is what a waiting caller learns: its item's result, or that it
// is to run the next group.
type outcome struct {
	err  error
	lead bool
}

// do queues item and returns its error once its group has run, running the
// group itself when its turn comes. A caller whose ctx ends before its
// group starts leaves without its item running; once the group has
// started, the caller waits for it to end.
func (t *turns[T]) do(ctx context.Context, item T) error {
	w := &waiter[T]{ctx: ctx, item: item, done: make(chan outcome, 1)}
	t.mu.Lock()
	t.queue = append(t.queue, w)
	lead := !t.running
	t.running = true
	t.mu.Unlock()
	if lead {
		return t.lead(w)
	}
	select {
	case o := <-w.done:
		return t.follow(w, o)
	case <-ctx.Done():
	}
	t.mu.Lock()
	select {
	case o := <-w.done: // decided meanwhile
		t.mu.Unlock()
		return t.follow(w, o)
	default:
	}
	if i := slices.Index(t.queue, w); i >= 0 {
		t.queue = slices.Delete(t.queue, i, i+1)
		t.mu.Unlock()
		return fmt.Errorf("wait to write: %w", ctx.Err())
	}
	t.mu.Unlock()
	return t.follow(w, <-w.done) // taken into a running group
}

// follow acts on the outcome a waiting caller received.
func (t *turns[T]) follow(w *waiter[T], o outcome) error {
	if o.lead {
		return t.lead(w)
	}
	return o.err
}

// lead runs one group, which holds self, hands every other caller in it
// its result, and passes the turn to the first caller still waiting. If
// run panics, the others in the group fail, the turn passes all the same,
// and the panic goes on up self's goroutine.
func (t *turns[T]) lead(self *waiter[T]) (own error) {
	t.mu.Lock()
	n := min(len(t.queue), t.max)
	group := slices.Clone(t.queue[:n])
	t.queue = slices.Delete(t.queue, 0, n)
	t.mu.Unlock()
	defer t.pass()

	errs := make([]error, len(group))
	var items []T
	var at []int // where each item's error goes
	for i, w := range group {
		if err := w.ctx.Err(); err != nil {
			errs[i] = fmt.Errorf("wait to write: %w", err)
			continue
		}
		items, at = append(items, w.item), append(at, i)
	}
	ran := false
	defer func() {
		if !ran {
			for _, i := range at {
				errs[i] = errors.New("storage: a group of writes panicked")
			}
		}
		for i, w := range group {
			if w != self {
				w.done <- outcome{err: errs[i]}
			}
		}
	}()
	if len(items) > 0 {
		for j, err := range t.run(items) {
			errs[at[j]] = err
		}
	}
	ran = true
	return errs[slices.Index(group, self)]
}

// pass hands the turn to the first caller waiting, if any.
func (t *turns[T]) pass() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.queue) > 0 {
		t.queue[0].done <- outcome{lead: true}
	} else {
		t.running = false
	}
}
