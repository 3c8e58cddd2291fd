package api_test

import (
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkServer_CreateRun: runs created per second through POST /runs
// from concurrent clients on loopback (sim executor, store without fsync).
func BenchmarkServer_CreateRun(b *testing.B) {
	h := newHarness(b, harnessOpts{})
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := h.do("POST", "/apis/v2beta1/runs", h.admin, runBody(simPipeline, nil)); r.status != 200 {
				b.Errorf("create: %d %s", r.status, r.body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "runs/s")
}

// BenchmarkServer_GetRun: p50/p99 latency of GET /runs/{id} under
// concurrent clients, over a store holding 200 runs.
func BenchmarkServer_GetRun(b *testing.B) {
	h := newHarness(b, harnessOpts{})
	var ids []string
	for range 200 {
		ids = append(ids, h.must(200, "POST", "/apis/v2beta1/runs", h.admin, runBody(simPipeline, nil)).m(b)["run_id"].(string))
	}
	h.waitRun(ids[len(ids)-1], h.admin)
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		i := 0
		for pb.Next() {
			t0 := time.Now()
			req, _ := http.NewRequest("GET", h.http.URL+"/apis/v2beta1/runs/"+ids[i%len(ids)], nil)
			req.Header.Set("Authorization", "Bearer "+h.admin)
			res, err := h.http.Client().Do(req)
			if err != nil || res.StatusCode != 200 {
				b.Errorf("get: %v", err)
				return
			}
			_, _ = drain(res)
			mine = append(mine, time.Since(t0))
			i++
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}

func drain(res *http.Response) (int64, error) {
	defer res.Body.Close()
	return io.Copy(io.Discard, res.Body)
}
