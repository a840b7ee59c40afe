package realtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/realtime/redistest"
)

// benchMessage is a message.new event as the server publishes one: a text message of 60
// Korean characters with its sender (400 bytes of JSON).
var benchMessage = realtime.Event{Type: "message.new", Data: json.RawMessage(`{"id":48213377,"conversation_id":120442,` +
	`"seq":5121,"sender":{"id":90211,"name":"김선생","role":"teacher","avatar_url":null},"kind":"text","body":"` +
	strings.Repeat("안녕하세요", 12) + `","client_msg_id":"0b7e4c1e-8c4f-4a52-9a4e-1f0c2b6d9e31",` +
	`"created_at":"2026-11-30T08:00:00.123456+09:00","read_count":0}`)}

// BenchmarkRedisPublish publishes one message to a direct conversation's 2 members, a
// group's 10 and a zone-sized group's 500 (their user channels, as chat does), on a
// private single Redis and on a private Redis Cluster of three masters, with another
// engine subscribed to every channel and draining. Besides the time, it reports what
// Redis did per message, summed over its nodes from INFO: commands run (those the
// publish script runs included), CPU (user + sys, µs) and bytes in and out.
//
//	go test ./realtime -run '^$' -bench BenchmarkRedisPublish -benchtime 2000x
func BenchmarkRedisPublish(b *testing.B) {
	single := redistest.Start(b)
	cl := redistest.StartCluster(b)
	for _, setup := range []struct {
		name    string
		url     string
		cluster bool
		addrs   []string
	}{
		{"single", single.URL, false, []string{strings.TrimSuffix(strings.TrimPrefix(single.URL, "redis://"), "/0")}},
		{"cluster3", cl.URL, true, cl.Addrs},
	} {
		for _, fanout := range []int{2, 10, 500} {
			b.Run(fmt.Sprintf("%s/members=%d", setup.name, fanout), func(b *testing.B) {
				benchPublish(b, setup.url, setup.cluster, setup.addrs, fanout)
			})
		}
	}
}

func benchPublish(b *testing.B, url string, cluster bool, addrs []string, fanout int) {
	ctx := context.Background()
	prefix := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	newEngine := func() *realtime.Redis {
		var (
			r   *realtime.Redis
			err error
		)
		if cluster {
			r, err = realtime.NewRedisCluster(ctx, url, 1<<20, nil, prefix)
		} else {
			r, err = realtime.NewRedisWithPrefix(ctx, url, 1<<20, nil, prefix)
		}
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = r.Close() })
		return r
	}
	pub, sub := newEngine(), newEngine()
	const users = 2000
	channels := make([]string, users)
	for i := range channels {
		channels[i] = "user:" + strconv.Itoa(100000+i)
	}
	s, err := sub.Subscribe(ctx, channels...)
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		var buf []realtime.Delivery
		for range s.Ready() {
			buf, _ = s.Take(buf[:0])
			got.Add(int64(len(buf)))
		}
	}()
	nodes := make([]*redis.Client, len(addrs))
	for i, a := range addrs {
		nodes[i] = redis.NewClient(&redis.Options{Addr: a})
		b.Cleanup(func() { _ = nodes[i].Close() })
		// These servers are the benchmark's own. Redis cuts a pub/sub client whose
		// output waits past 32 MB (or 8 MB for 60 s); the one subscriber here, sharing
		// the cores with eight publishers, can fall that far behind with 500 members
		// (docs/scaling.md), which would measure a resync instead of the publishes.
		if err := nodes[i].ConfigSet(ctx, "client-output-buffer-limit", "pubsub 0 0 0").Err(); err != nil {
			b.Fatal(err)
		}
	}
	stats := func() (cmds, cpuMicros, in, out float64) {
		for _, n := range nodes {
			info, err := n.Info(ctx, "stats", "cpu").Result()
			if err != nil {
				b.Fatal(err)
			}
			for line := range strings.Lines(info) {
				k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
				if !ok {
					continue
				}
				f, _ := strconv.ParseFloat(v, 64)
				switch k {
				case "total_commands_processed":
					cmds += f
				case "used_cpu_user", "used_cpu_sys":
					cpuMicros += f * 1e6
				case "total_net_input_bytes":
					in += f
				case "total_net_output_bytes":
					out += f
				}
			}
		}
		return
	}
	// Warm up: the script loaded on every node.
	if err := pub.PublishMany(ctx, channels, benchMessage); err != nil {
		b.Fatal(err)
	}
	waitGot := func(want int64) {
		deadline := time.Now().Add(30 * time.Second)
		for got.Load() < want {
			if time.Now().After(deadline) {
				b.Fatalf("delivered %d of %d", got.Load(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitGot(users)
	c0, cpu0, in0, out0 := stats()
	start := got.Load()
	var sent atomic.Int64
	b.ResetTimer()
	// Eight publishers at once, as several sends in flight.
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), 1))
			for sent.Add(1) <= int64(b.N) {
				first := rng.IntN(users - fanout + 1)
				if err := pub.PublishMany(ctx, channels[first:first+fanout], benchMessage); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	waitGot(start + int64(b.N*fanout))
	b.StopTimer()
	c1, cpu1, in1, out1 := stats()
	n := float64(b.N)
	b.ReportMetric((c1-c0)/n, "redis-cmds/msg")
	b.ReportMetric((cpu1-cpu0)/n, "redis-cpu-µs/msg")
	b.ReportMetric((in1-in0)/n, "redis-in-B/msg")
	b.ReportMetric((out1-out0)/n, "redis-out-B/msg")
	s.Close()
	<-done
}
