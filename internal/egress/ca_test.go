package egress

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"testing"
)

// TestLeafCacheBounded checks that the leaf certificates a CA keeps are
// bounded whatever the number of hosts a wildcard binding lets a skill
// name: after the cache is full, minting eight times as many leaves again
// grows the live heap by far less than keeping them would (~3.5 KB each,
// ~28 MiB), and a host used recently stays cached.
func TestLeafCacheBounded(t *testing.T) {
	p, err := New(Config{Secrets: []Secret{{Name: "K", Placeholder: NewPlaceholder(), Value: "v-0001", Hosts: rules(t, "*.bucket.test")}}})
	if err != nil {
		t.Fatal(err)
	}
	mint := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := p.ca.leaf(fmt.Sprintf("x%d.bucket.test", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	heap := func() int64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	mint(0, maxLeaves)
	hot, err := p.ca.leaf("hot.bucket.test")
	if err != nil {
		t.Fatal(err)
	}
	base := heap()
	for i := maxLeaves; i < 9*maxLeaves; i += 256 {
		mint(i, i+256)
		if again, _ := p.ca.leaf("hot.bucket.test"); again != hot {
			t.Fatalf("after %d hosts, a host in use was minted again", i)
		}
	}
	grew := heap() - base
	p.ca.mu.Lock()
	n := len(p.ca.leaves)
	p.ca.mu.Unlock()
	t.Logf("%d more leaves minted: %d cached, live heap %+d KiB", 8*maxLeaves, n, grew>>10)
	if n > maxLeaves || grew > 8<<20 {
		t.Fatalf("leaf cache unbounded: %d leaves cached (at most %d), heap grew %d MiB", n, maxLeaves, grew>>20)
	}
}

// TestLeafMintedAfterHello checks that an intercepted CONNECT mints no
// certificate until a ClientHello arrives: CONNECTs that send nothing
// cost no leaf.
func TestLeafMintedAfterHello(t *testing.T) {
	res := fakeResolver{}
	for i := range 50 {
		res[fmt.Sprintf("x%d.bucket.test", i)] = []netip.Addr{loop4}
	}
	h := start(t, Config{
		Allow:    rules(t, "*.bucket.test:443", "127.0.0.1"),
		Resolver: res,
		Secrets:  []Secret{{Name: "K", Placeholder: NewPlaceholder(), Value: "sk-live-0123456789abcdef", Hosts: rules(t, "*.bucket.test")}},
	})
	connect := func(i int) net.Conn {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "CONNECT x%d.bucket.test:443 HTTP/1.1\r\nHost: x%d.bucket.test:443\r\n\r\n", i, i)
		br := bufio.NewReader(c)
		if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != 200 {
			t.Fatalf("CONNECT: %v %v", res, err)
		}
		return c
	}
	leaves := func() int {
		h.p.ca.mu.Lock()
		defer h.p.ca.mu.Unlock()
		return len(h.p.ca.leaves)
	}
	for i := range 49 {
		connect(i).Close()
	}
	c := connect(49)
	defer c.Close()
	if n := leaves(); n != 0 {
		t.Fatalf("%d leaves minted for CONNECTs that sent no ClientHello", n)
	}
	tc := tls.Client(c, &tls.Config{ServerName: "x49.bucket.test", RootCAs: h.caPool(t)})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if n := leaves(); n != 1 {
		t.Fatalf("%d leaves after one handshake", n)
	}
}
