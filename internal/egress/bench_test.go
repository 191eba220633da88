package egress

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// BenchmarkAddedLatency measures the latency the proxy adds to one request
// over loopback, against the same request sent directly: each iteration
// sends one direct and one proxied request (both on kept-alive
// connections) and the benchmark reports the medians and 99th
// percentiles, and the difference of the medians (added-p50-µs; the target
// is ≤ 1000).
//
//	go test ./egress -bench . -run '^$'
func BenchmarkAddedLatency(b *testing.B) {
	body := []byte(`{"ok":true,"items":[1,2,3]}`)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	for _, mode := range []string{"http", "connect", "intercept"} {
		b.Run(mode, func(b *testing.B) {
			var ts *httptest.Server
			if mode == "http" {
				ts = httptest.NewServer(handler)
			} else {
				ts = httptest.NewTLSServer(handler)
			}
			defer ts.Close()
			cfg := Config{
				Allow:   rules(b, "example.com"),
				Resolve: map[string][]netip.Addr{"example.com": {loop4}},
			}
			ph := NewPlaceholder()
			if mode == "intercept" {
				cfg.Secrets = []Secret{{Name: "K", Placeholder: ph, Value: "real-api-key-0123456789", Hosts: rules(b, "example.com")}}
				cfg.UpstreamRootCAs = serverPool(ts)
			}
			h := start(b, cfg)
			scheme := "http"
			if mode != "http" {
				scheme = "https"
			}
			port := portOf(b, ts)
			proxied := h.client(serverPool(ts))
			if mode == "intercept" {
				proxied = h.client(h.caPool(b))
			}
			direct := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serverPool(ts), ServerName: "example.com"}}}
			directURL := fmt.Sprintf("%s://127.0.0.1:%d/v1/x?key=%s", scheme, port, ph)
			proxyURL := fmt.Sprintf("%s://example.com:%d/v1/x?key=%s", scheme, port, ph)
			do := func(c *http.Client, u string) time.Duration {
				t0 := time.Now()
				res, err := c.Get(u)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Fatalf("%s: %d", u, res.StatusCode)
				}
				return time.Since(t0)
			}
			for range 20 { // warm up connections, leaf certificate, pools
				do(direct, directURL)
				do(proxied, proxyURL)
			}
			var d, p []time.Duration
			b.ResetTimer()
			for b.Loop() {
				d = append(d, do(direct, directURL))
				p = append(p, do(proxied, proxyURL))
			}
			b.StopTimer()
			slices.Sort(d)
			slices.Sort(p)
			q := func(s []time.Duration, f float64) float64 {
				return float64(s[int(f*float64(len(s)-1))].Nanoseconds()) / 1e3
			}
			b.ReportMetric(q(d, 0.5), "direct-p50-µs")
			b.ReportMetric(q(p, 0.5), "proxy-p50-µs")
			b.ReportMetric(q(p, 0.5)-q(d, 0.5), "added-p50-µs")
			b.ReportMetric(q(d, 0.99), "direct-p99-µs")
			b.ReportMetric(q(p, 0.99), "proxy-p99-µs")
		})
	}
}
