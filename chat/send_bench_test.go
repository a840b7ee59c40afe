package chat_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dreamseed/messenger/chat"
)

// BenchmarkSendGroup sends to a group of 10 and of 500, every member's stream subscribed
// and drained, on each engine: ns/op is the send as its sender waits for it, publish-µs/op
// the part of it in the engine's PublishAll (on Redis: the history scripts and the
// fan-out), store-µs/op the rest (the transaction, its member list, the answer). The
// difference between the two sizes over 490 is the cost of a recipient.
func BenchmarkSendGroup(b *testing.B) {
	for _, engine := range []string{"memory", "redis"} {
		for _, size := range []int{10, 500} {
			b.Run(fmt.Sprintf("%s/%d", engine, size), func(b *testing.B) {
				e, eng := engineEnv(b, engine)
				members, conv := e.bigGroup(size)
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				var got atomic.Int64
				for _, u := range members {
					sub, err := eng.Subscribe(context.Background(), chat.UserChannel(u.ID))
					if err != nil {
						b.Fatal(err)
					}
					wg.Go(func() {
						defer sub.Close()
						for {
							if _, err := sub.Next(ctx); err != nil {
								return
							}
							got.Add(1)
						}
					})
				}
				defer func() { cancel(); wg.Wait() }()
				log := eng.(*publishLog)
				var pub time.Duration
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					sender := members[i%size]
					before := log.spent.Load()
					if _, _, err := e.svc.SendMessage(ctx, sender, conv, "내일 준비물 안내", uuid.NewString()); err != nil {
						b.Fatal(err)
					}
					pub += time.Duration(log.spent.Load() - before)
				}
				b.ReportMetric(float64(pub.Microseconds())/float64(b.N), "publish-µs/op")
				b.ReportMetric(float64(b.Elapsed().Microseconds()-pub.Microseconds())/float64(b.N), "store-µs/op")
			})
		}
	}
}
