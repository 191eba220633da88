//go:build linux

package gvisor_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/gvisor"
	"github.com/skillbox-dev/skillbox/sandbox/linux"
)

// benchBody is the small standard-library skill every sub-benchmark runs.
const benchBody = `        import hashlib, json
        return {"sha": hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()}`

// BenchmarkGvisorCall times one single-use call of the same small
// standard-library skill, on the same interpreter, in the same run: on the
// linux tier (its default, a pre-forked zygote child; and cold, a new jail
// and interpreter per call) and under gVisor (a new gVisor sandbox per
// call; and a session's call, in one sandbox). Each reports p50, p99 and
// mean; the gVisor ones also their p50 over the linux tier's
// (x-linux-p50) measured just before.
//
//	go test ./sandbox/gvisor -run '^$' -bench GvisorCall -benchtime 30x
func BenchmarkGvisorCall(b *testing.B) {
	var linuxP50 time.Duration
	run := func(b *testing.B, d sandbox.Driver, mode sandbox.Mode) time.Duration {
		if c := d.Probe(context.Background()); !c.Available {
			b.Skipf("%s: %s", d.Name(), c.Reason)
		}
		sb, err := d.Open(context.Background(), sandbox.Spec{SkillID: "bench/sha", BundleDir: benchBundle(b), Mode: mode})
		if err != nil {
			b.Fatal(err)
		}
		defer sb.Close()
		req := sandbox.Request{Params: []byte(`{"x":1}`)}
		if _, err := sb.Call(context.Background(), req); err != nil { // warm
			b.Fatal(err)
		}
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			t0 := time.Now()
			if _, err := sb.Call(context.Background(), req); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		slices.Sort(lat)
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		p50 := lat[len(lat)/2]
		b.ReportMetric(ms(p50), "p50-ms")
		b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ms")
		b.ReportMetric(ms(sum/time.Duration(len(lat))), "mean-ms")
		return p50
	}
	vs := func(b *testing.B, p50 time.Duration) {
		if linuxP50 > 0 {
			b.ReportMetric(float64(p50)/float64(linuxP50), "x-linux-p50")
		}
	}
	b.Run("linux", func(b *testing.B) { linuxP50 = run(b, linux.New(linux.Options{}), sandbox.ModeSingleUse) })
	b.Run("linux-cold", func(b *testing.B) {
		vs(b, run(b, linux.New(linux.Options{Exec: linux.ExecCold}), sandbox.ModeSingleUse))
	})
	b.Run("gvisor", func(b *testing.B) {
		vs(b, run(b, gvisor.New(gvisor.Options{TempDir: b.TempDir()}), sandbox.ModeSingleUse))
	})
	b.Run("gvisor-session", func(b *testing.B) {
		vs(b, run(b, gvisor.New(gvisor.Options{TempDir: b.TempDir()}), sandbox.ModeSession))
	})
}
