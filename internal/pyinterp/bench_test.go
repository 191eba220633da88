package pyinterp

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// BenchmarkResolve measures what one CLI invocation pays to resolve the
// interpreter (the in-process cache is emptied before each call): with the
// persistent cache off, on a miss (the cache file removed before each
// call: the probe plus computing and storing the entry) and on a hit.
func BenchmarkResolve(b *testing.B) {
	for _, name := range []string{"python3", "/usr/bin/python3"} {
		for _, mode := range []string{"nocache", "miss", "hit"} {
			b.Run(strings.ReplaceAll(name, "/", "_")+"/"+mode, func(b *testing.B) {
				if _, err := exec.LookPath(name); err != nil {
					b.Skipf("%s not found", name)
				}
				b.Setenv("XDG_CACHE_HOME", b.TempDir())
				if mode == "nocache" {
					b.Setenv(NoCacheEnvVar, "1")
				}
				resolve := func() {
					cacheMu.Lock()
					clear(cache)
					cacheMu.Unlock()
					if _, err := Resolve(context.Background(), name); err != nil {
						b.Fatal(err)
					}
				}
				resolve()
				if mode == "hit" && cachePath() != "" {
					if _, err := os.Stat(cachePath()); err != nil {
						b.Fatalf("nothing cached: %v", err)
					}
				}
				for b.Loop() {
					if mode == "miss" {
						os.Remove(cachePath())
					}
					resolve()
				}
			})
		}
	}
}
