package image

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// A registry's config blob is read whole into memory as long as the
// manifest says it is: a manifest that declares no size, a negative one
// or one over MaxConfigSize is refused (kind limit) before the config is
// asked for. Before, a hostile registry's endless config took ~13 GB of
// the host's memory in 20 s.
func TestConfigSizeBounded(t *testing.T) {
	for _, size := range []int64{-1, 0, MaxConfigSize + 1, 8 << 30} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[]}`, strings.Repeat("a", 64), size)
			var blobs atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/v2/":
				case strings.Contains(r.URL.Path, "/manifests/"):
					w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
					w.Write([]byte(manifest))
				case strings.Contains(r.URL.Path, "/blobs/"):
					blobs.Add(1)
					chunk := make([]byte, 1<<20)
					for r.Context().Err() == nil {
						if _, err := w.Write(chunk); err != nil {
							return
						}
					}
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			ref, err := ParseRef(strings.TrimPrefix(srv.URL, "http://")+"/evil/img:1", "")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // against a hang
			defer cancel()
			_, err = (&Cache{Dir: t.TempDir()}).Resolve(ctx, ref)
			if errdefs.KindOf(err) != errdefs.Limit || !strings.Contains(fmt.Sprint(err), "image config is declared as") {
				t.Errorf("Resolve: %v (kind %s), want a limit error on the config's size", err, errdefs.KindOf(err))
			}
			if n := blobs.Load(); n != 0 {
				t.Errorf("the config was asked for %d times before the refusal", n)
			}
		})
	}
}
