package egress

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoadStalledBodies is the attack of issue 12 on one proxy: 250
// client connections each send 1 MiB less one byte of a 1 MiB JSON body
// full of placeholders, then stall, while a normal client keeps making
// requests, which must all succeed. The proxy must not hold the bodies:
// the heap the test process grows by (proxy, test clients and test host
// together) must stay under a bound derived from MaxBuffer and the
// connection count. It measures memory, not speed; the figures are in
// docs/PERFORMANCE.md:
//
//	go test -count=1 -run TestLoadStalledBodies -v ./egress/
func TestLoadStalledBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	const conns, bodySize, value = 250, 1 << 20, "sk-live-0123456789abcdef"
	var received atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 8<<10)
		for {
			n, err := r.Body.Read(buf)
			received.Add(int64(n))
			if err != nil {
				break
			}
		}
		io.WriteString(w, "ok")
	}))
	defer ts.Close()
	ph := NewPlaceholder()
	cfg := Config{
		Allow:    rules(t, "api.test"),
		Resolve:  map[string][]netip.Addr{"api.test": {loop4}},
		Secrets:  []Secret{{Name: "K", Placeholder: ph, Value: value, Hosts: rules(t, "api.test"), AllowHTTP: true}},
		MaxConns: 4 * conns, // upstream connections; client ones stay at the default
	}
	h := start(t, cfg)
	port := portOf(t, ts)
	normal := h.client(nil)
	call := func() error {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://api.test:%d/normal", port), nil)
		req.Header.Set("Authorization", "Bearer "+ph)
		res, err := normal.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if body := readAll(res); res.StatusCode != 200 || body != "ok" {
			return fmt.Errorf("normal request: %d %q", res.StatusCode, body)
		}
		return nil
	}
	for range 10 {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	heap0, stack0, rss0 := memNow(t)

	var body bytes.Buffer
	body.WriteString(`{"k":"`)
	for body.Len() < bodySize-100 {
		body.WriteString(ph + strings.Repeat("x", 200))
	}
	body.WriteString(strings.Repeat("y", bodySize-2-body.Len()) + `"`) // the final } never comes
	// What the host gets of each body: substituted, less what a window
	// may hold back.
	want := int64(conns * (len(bytes.ReplaceAll(body.Bytes(), []byte(ph), []byte(value))) - 64<<10))
	var stalled []net.Conn
	defer func() {
		for _, c := range stalled {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, conns+100)
	for range conns {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
		wg.Go(func() {
			c.SetWriteDeadline(time.Now().Add(hangGuard))
			_, err := fmt.Fprintf(c, "POST http://api.test:%d/upload HTTP/1.1\r\nHost: api.test:%d\r\nContent-Type: application/json\r\n"+
				"Content-Length: %d\r\n\r\n%s", port, port, bodySize, body.Bytes())
			if err != nil {
				errs <- err
			}
		})
		if err := call(); err != nil {
			errs <- err
		}
	}
	wg.Wait()
	// Wait until the host has what the proxy passed on of every body: all
	// but the bytes a substitution window may hold back.
	deadline := time.Now().Add(hangGuard)
	for received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for range 50 {
		if err := call(); err != nil {
			errs <- err
		}
	}
	heap1, stack1, rss1 := memNow(t)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := received.Load(); got < want {
		t.Errorf("the host received %d bytes of the stalled bodies: the proxy held them back", got)
	}
	held := h.p.buf.used.Load()
	t.Logf("%d stalled connections × %d-byte bodies: heap in use +%.1f MiB, stacks +%.1f MiB, VmRSS +%.1f MiB (%.1f → %.1f MiB), VmHWM %.1f MiB; proxy buffer budget in use %.1f MiB of %d MiB",
		conns, bodySize, mib(heap1-heap0), mib(stack1-stack0), mib(rss1-rss0), mib(rss0), mib(rss1), mib(procStatus(t, "VmHWM:")), mib(held), DefaultMaxBuffer>>20)
	// What the proxy may hold (MaxBuffer), plus the fixed cost of a
	// connection (buffers on three sides: client, proxy, host), generously.
	bound := int64(DefaultMaxBuffer) + conns*(128<<10)
	if heap1-heap0 > bound {
		t.Errorf("heap grew by %.1f MiB under the attack, over the bound of %.1f MiB", mib(heap1-heap0), mib(bound))
	}
}

// memNow is the heap and stacks in use after a collection, and VmRSS once
// the freed memory is returned to the system.
func memNow(t *testing.T) (heap, stack, rss int64) {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse), int64(ms.StackInuse), vmRSS(t)
}

// vmRSS is the process's resident set from /proc/self/status (0 where
// there is none).
func vmRSS(t *testing.T) int64 { return procStatus(t, "VmRSS:") }

// procStatus is a size field of /proc/self/status, in bytes.
func procStatus(t *testing.T, field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s %q: %v", field, v, err)
			}
			return kb << 10
		}
	}
	return 0
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
