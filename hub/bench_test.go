package hub_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stephub/stephub/hub"
)

// BenchmarkFanOut measures the hub's fan-out alone: one Publish to n
// subscribers of one video, then each subscriber's receive and Accept, as
// its transport would do them. Everything runs on the benchmark's goroutine,
// so no subscriber falls behind and the numbers do not depend on the
// scheduler. It reports the cost and allocations per delivery, one delivery
// being one event reaching one subscriber.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			ctx := context.Background()
			h := hub.New(hub.Options{History: newHistory()})
			defer h.Close()
			subs := make([]*hub.Subscription, n)
			for i := range subs {
				sub, err := h.Subscribe(ctx, 1, 0)
				if err != nil {
					b.Fatal(err)
				}
				subs[i] = sub
			}
			e := &hub.Event{VideoID: 1, Data: []byte(`{"id":1,"step":1}`)}
			batch := make([]*hub.Event, 0, 1)
			b.ReportAllocs()
			for b.Loop() {
				e.Seq++ // each round is the next event, so Accept passes it on
				h.Publish(e)
				for _, sub := range subs {
					var err error
					if batch, err = sub.Accept(ctx, batch[:0], <-sub.C()); err != nil || len(batch) != 1 {
						b.Fatalf("Accept = %d events, %v; want 1, nil", len(batch), err)
					}
				}
			}
			deliveries := float64(b.N) * float64(n)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
			b.ReportMetric(float64(testing.AllocsPerRun(1, func() {
				e.Seq++
				h.Publish(e)
				for _, sub := range subs {
					batch, _ = sub.Accept(ctx, batch[:0], <-sub.C())
				}
			}))/float64(n), "allocs/delivery")
		})
	}
}
