package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/internal/server"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// BenchmarkHTTPCallLarge is one call over the HTTP API on loopback, linux
// backend, single-use, with large params (the skill answers their length)
// or a large result (its output cap raised): the server's per-MB cost
// (issue 17 target 2; scripts/compare-params compares it with an
// in-process Python server). Calls are spaced (timer stopped) so that the
// next call's child is ready, as between an agent's calls. Profile it with
// -cpuprofile to see where the server's time goes.
func BenchmarkHTTPCallLarge(b *testing.B) {
	ctx := context.Background()
	d, err := sandbox.Choose(ctx, "linux", false)
	if err != nil {
		b.Skipf("linux backend: %v", err)
	}
	if c := d.Probe(ctx); !c.Available {
		b.Skipf("linux backend unavailable here: %s", c.Reason)
	}
	root := b.TempDir()
	dir := filepath.Join(root, "bench", "size")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte(`name: size
version: "1.0.0"
description: Answers the length of data, or a string of n characters.
parameters:
  type: object
  properties:
    data: {type: string}
    n: {type: integer, minimum: 0}
  additionalProperties: false
permissions:
  limits:
    output: 4MiB
`), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(`from skillware.core.base_skill import BaseSkill


class Size(BaseSkill):
    @property
    def manifest(self):
        return {"name": "size"}

    def execute(self, params):
        if "n" in params:
            return {"data": "x" * params["n"]}
        return {"len": len(params["data"])}
`), 0o644)
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierExternal}),
		skillbox.WithBackend("linux"), skillbox.WithCacheDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close() })
	cfg := server.Config{Logger: slog.New(slog.DiscardHandler)}
	cfg.Call.TrustRemoteCode = true
	s, err := server.New(rt, cfg)
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	b.Cleanup(hs.Close)
	data := func(n int) []byte { return []byte(`{"data":"` + strings.Repeat("abcdefghij", n/10) + `"}`) }
	for _, c := range []struct {
		name string
		body []byte
		want int
	}{
		{"params=1KB", data(1e3), 0},
		{"params=100KB", data(1e5), 0},
		{"params=1MB", data(1e6), 0},
		{"result=1MB", []byte(`{"n":1000000}`), 1e6},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(max(len(c.body), c.want)))
			for b.Loop() {
				b.StopTimer()
				time.Sleep(100 * time.Millisecond)
				b.StartTimer()
				resp, err := http.Post(hs.URL+"/v1/skills/bench/size/call", "application/json", bytes.NewReader(c.body))
				if err != nil {
					b.Fatal(err)
				}
				out, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || len(out) < c.want {
					b.Fatalf("HTTP %d, %d bytes: %.300s (%v)", resp.StatusCode, len(out), out, err)
				}
			}
		})
	}
}
