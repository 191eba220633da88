package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// AttackReport counts how a server answered an attack: answers by HTTP
// status, connections it closed without an answer, and the bytes sent.
type AttackReport struct {
	Requests  int
	Status    map[int]int
	Cut       int   // connections closed by the server before any answer
	BytesSent int64 // body bytes written
	FirstBody string
}

func (r *AttackReport) String() string {
	return fmt.Sprintf("%d requests: statuses %v, %d cut unanswered, %.1fMiB of body sent", r.Requests, r.Status, r.Cut, float64(r.BytesSent)/(1<<20))
}

type tally struct {
	mu  sync.Mutex
	rep AttackReport
}

func (t *tally) add(status int, body string, sent int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rep.Requests++
	t.rep.BytesSent += sent
	if status == 0 {
		t.rep.Cut++
		return
	}
	t.rep.Status[status]++
	if t.rep.FirstBody == "" {
		t.rep.FirstBody = body
	}
}

// BatchAttack sends JSON-RPC batches of calls tools/call of load/echo to
// url's /mcp over attackers sessions opened at protocol version 2025-03-26
// (the last with batches), one batch after another (100ms apart) until ctx
// ends.
func BatchAttack(ctx context.Context, url, token string, attackers, calls int) (*AttackReport, error) {
	t := &tally{rep: AttackReport{Status: map[int]int{}}}
	var batch bytes.Buffer
	batch.WriteByte('[')
	for i := range calls {
		if i > 0 {
			batch.WriteByte(',')
		}
		fmt.Fprintf(&batch, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"load_echo","arguments":{"nonce":"b%d"}}}`, i, i)
	}
	batch.WriteByte(']')
	client := &http.Client{Timeout: 5 * time.Minute}
	post := func(body []byte, hdr map[string]string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, "POST", url+"/mcp", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		return client.Do(req)
	}
	var wg sync.WaitGroup
	errc := make(chan error, attackers)
	for range attackers {
		wg.Go(func() {
			resp, err := post([]byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"attacker","version":"1"}}}`), nil)
			if err != nil {
				errc <- err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			hdr := map[string]string{"Mcp-Session-Id": resp.Header.Get("Mcp-Session-Id"), "MCP-Protocol-Version": "2025-03-26"}
			if resp, err := post([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), hdr); err == nil {
				resp.Body.Close()
			}
			for ctx.Err() == nil {
				resp, err := post(batch.Bytes(), hdr)
				if err != nil {
					if ctx.Err() == nil {
						t.add(0, "", int64(batch.Len()))
					}
					continue
				}
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				t.add(resp.StatusCode, string(b), int64(batch.Len()))
				// A pause, so the attack measures the server, not how fast
				// this process can copy batches onto the loopback.
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	return &t.rep, <-errc
}

// TrickleAttack opens clients connections to addr (host:port), each
// POSTing a body of size bytes at rate bytes per second, alternately to the
// API call of load/echo and to /mcp; when the server answers or cuts a
// connection, it opens another, until ctx ends.
func TrickleAttack(ctx context.Context, addr, token string, clients int, size, rate int64) *AttackReport {
	t := &tally{rep: AttackReport{Status: map[int]int{}}}
	const chunk = 4 << 10
	interval := time.Duration(int64(time.Second) * chunk / rate)
	var wg sync.WaitGroup
	for i := range clients {
		path := "/v1/skills/" + Skill + "/call"
		if i%2 == 1 {
			path = "/mcp"
		}
		wg.Go(func() {
			for ctx.Err() == nil {
				status, body, sent := trickleOnce(ctx, addr, path, token, size, chunk, interval)
				if ctx.Err() != nil {
					return
				}
				t.add(status, body, sent)
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
	wg.Wait()
	return &t.rep
}

// trickleOnce sends one request whose body of size bytes comes chunk
// bytes per interval, and returns the server's status (0 if it closed the
// connection without answering), the start of its answer and the body
// bytes sent.
func trickleOnce(ctx context.Context, addr, path, token string, size, chunk int64, interval time.Duration) (int, string, int64) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, "", 0
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	var head strings.Builder
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: %d\r\n", path, size)
	if token != "" {
		fmt.Fprintf(&head, "Authorization: Bearer %s\r\n", token)
	}
	head.WriteString("\r\n")
	if _, err := io.WriteString(c, head.String()); err != nil {
		return 0, "", 0
	}
	var sent int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := bytes.Repeat([]byte(" "), int(chunk))
		buf[0] = '{'
		for sent < size {
			n := min(chunk, size-sent)
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
			buf[0] = ' '
			sent += n
			time.Sleep(interval)
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	c.Close()
	<-done
	if err != nil {
		return 0, "", sent
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	return resp.StatusCode, string(b), sent
}
