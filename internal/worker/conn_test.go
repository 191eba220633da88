//go:build linux

package worker

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
)

func frame(payload string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	return append(b, payload...)
}

func TestReadFrame(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want string
		err  error
	}{
		{"valid", frame(`{"type":"ready"}`), `{"type":"ready"}`, nil},
		{"empty stream", nil, "", io.EOF},
		{"short header", []byte{0, 0}, "", io.ErrUnexpectedEOF},
		{"zero length", []byte{0, 0, 0, 0}, "", ErrEmptyFrame},
		{"oversized", []byte{0xff, 0xff, 0xff, 0xff}, "", ErrFrameTooLarge},
		{"just over cap", frame(strings.Repeat("x", 65)), "", ErrFrameTooLarge},
		{"at cap", frame(strings.Repeat("x", 64)), strings.Repeat("x", 64), nil},
		{"truncated payload", frame(`{"type":"ready"}`)[:10], "", io.ErrUnexpectedEOF},
		{"header only", []byte{0, 0, 0, 5}, "", io.ErrUnexpectedEOF},
		{"junk text", []byte("hello world"), "", ErrFrameTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadFrame(bytes.NewReader(c.in), 64)
			if !errors.Is(err, c.err) || string(got) != c.want {
				t.Fatalf("got %q, %v; want %q, %v", got, err, c.want, c.err)
			}
		})
	}
}

// countingReader fails the test if more than max bytes are requested at once.
type countingReader struct {
	r   io.Reader
	max int
	t   *testing.T
}

func (c countingReader) Read(p []byte) (int, error) {
	if len(p) > c.max {
		c.t.Fatalf("read of %d bytes: payload buffer allocated beyond the cap", len(p))
	}
	return c.r.Read(p)
}

func TestReadFrameNoAllocBeyondCap(t *testing.T) {
	in := append([]byte{0x7f, 0xff, 0xff, 0xff}, make([]byte, 100)...)
	if _, err := ReadFrame(countingReader{bytes.NewReader(in), 1024, t}, 1024); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatal(err)
	}
}

func TestWriteFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, Call{Type: TypeCall, ID: 7, Params: json.RawMessage(`{"a":1}`)}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFrame(&buf, DefaultMaxFrame)
	if err != nil || string(got) != `{"type":"call","id":7,"params":{"a":1}}` {
		t.Fatalf("%s %v", got, err)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(frame(`{"type":"result","id":1,"result":{}}`))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Add([]byte("junk"))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := ReadFrame(bytes.NewReader(in), 1<<10)
		if err == nil {
			if len(p) == 0 || len(p) > 1<<10 || len(p)+4 > len(in) {
				t.Fatalf("bad frame of %d bytes from %d input bytes", len(p), len(in))
			}
			var rep Reply
			_ = json.Unmarshal(p, &rep)
		}
	})
}

// fakeWorker answers each request frame with whatever reply returns (raw
// bytes written to the reply pipe); nil means "say nothing".
func fakeWorker(t *testing.T, reply func(req []byte) []byte) *Conn {
	t.Helper()
	reqR, reqW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer repW.Close()
		for {
			req, err := ReadFrame(reqR, DefaultMaxFrame)
			if err != nil {
				return
			}
			if out := reply(req); out != nil {
				repW.Write(out)
			}
		}
	}()
	c := NewConn(reqW, repR, 1<<20)
	t.Cleanup(func() {
		c.Close()
		reqR.Close()
		wg.Wait()
	})
	return c
}

func shortCtx(t *testing.T) context.Context {
	return tctx(t, time.Second)
}

func TestConnJunk(t *testing.T) {
	cases := []struct {
		name  string
		reply string
		check func(error) bool
	}{
		{"junk text", "this is not a frame at all", isLimit},
		{"zero length", "\x00\x00\x00\x00", isViolation},
		{"invalid json", string(frame(`{"type":`)), isViolation},
		{"not an object", string(frame(`[1,2]`)), isViolation},
		{"no type", string(frame(`{"id":1}`)), isViolation},
		{"unknown type", string(frame(`{"type":"party","id":1}`)), isViolation},
		{"wrong id", string(frame(`{"type":"result","id":2,"result":1}`)), isViolation},
		{"wrong id error", string(frame(`{"type":"error","id":9,"error":{"kind":"exception","type":"X","message":"m"}}`)), isViolation},
		{"error without error", string(frame(`{"type":"error","id":1}`)), isViolation},
		{"bad error kind", string(frame(`{"type":"error","id":1,"error":{"kind":"load","type":"X"}}`)), isViolation},
		{"result without result", string(frame(`{"type":"result","id":1}`)), isViolation},
		{"huge length", "\x7f\xff\xff\xff" + strings.Repeat("x", 100), isLimit},
		{"truncated frame", "\x00\x00\x01\x00{\"type\"", isTimeout}, // worker stalls mid-frame
		{"silence", "", isTimeout}, // worker never answers
		{"result too big", string(frame(`{"type":"result","id":1,"result":"` + strings.Repeat("x", 1<<20-Envelope) + `"}`)), isLimit},
		// The harness writes UTF-8: a result that is not was forged, small
		// or large (a large one's result is sliced out of the frame).
		{"result not UTF-8", string(frame("{\"type\":\"result\",\"id\":1,\"result\":{\"y\":\"\xff\xfe\"}}")), isViolation},
		{"large result not UTF-8", string(frame("{\"type\":\"result\",\"id\":1,\"result\":\"" + strings.Repeat("x", 100<<10) + "\xff\"}")), isViolation},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := fakeWorker(t, func([]byte) []byte { return []byte(c.reply) })
			// A worker that stalls is cut by the call's context: short for
			// those cases, generous for the rest (reading a 1 MiB frame on
			// a loaded machine under -race takes its time).
			ctx, waitsForTimeout := tctx(t, 30*time.Second), c.name == "truncated frame" || c.name == "silence"
			if waitsForTimeout {
				ctx = shortCtx(t)
			}
			done := make(chan error, 1)
			go func() {
				_, err := conn.Call(ctx, 1, nil, nil)
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(time.Minute): // a hang guard, not a speed test
				t.Fatal("Call did not return after its context ended")
			}
			if !c.check(err) {
				t.Fatalf("err = %v (%T, kind %s)", err, err, errdefs.KindOf(err))
			}
		})
	}
}

func isViolation(err error) bool {
	var se *errdefs.SkillError
	return errors.As(err, &se) && se.Type == TypeProtocolViolation && errdefs.KindOf(err) == errdefs.Skill
}

func isLimit(err error) bool {
	var le *errdefs.LimitError
	return errors.As(err, &le) && le.Resource == "output"
}

func isTimeout(err error) bool {
	return errdefs.KindOf(err) == errdefs.Timeout && errors.Is(err, context.DeadlineExceeded)
}

func TestConnCancelAndBroken(t *testing.T) {
	conn := fakeWorker(t, func([]byte) []byte { return nil })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := conn.Call(ctx, 1, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if _, err := conn.Call(context.Background(), 2, nil, nil); !errors.Is(err, ErrConnBroken) {
		t.Fatalf("reuse after failure: %v", err)
	}
}

func TestConnGoodAndSkillErrors(t *testing.T) {
	conn := fakeWorker(t, func(req []byte) []byte {
		var m map[string]any
		json.Unmarshal(req, &m)
		switch m["type"] {
		case "init":
			return frame(`{"type":"ready","class":"X","python":"3.11","packages":{"a":"1.0","b":null}}`)
		}
		id := int(m["id"].(float64))
		if id == 2 {
			return frame(`{"type":"error","id":2,"error":{"kind":"exception","type":"ValueError","message":"no","traceback":"tb"}}`)
		}
		return frame(`{"type":"result","id":` + string(rune('0'+id)) + `,"result":{"p":` + string(m["params"].(map[string]any)["p"].(string)) + `}}`)
	})
	ctx := shortCtx(t)
	rep, err := conn.Init(ctx, Init{Bundle: "/skill", Mode: ModeSession})
	if err != nil || rep.Class != "X" || rep.Packages["b"] != nil || *rep.Packages["a"] != "1.0" {
		t.Fatalf("init: %+v %v", rep, err)
	}
	if res, err := conn.Call(ctx, 1, json.RawMessage(`{"p":"7"}`), nil); err != nil || string(res) != `{"p":7}` {
		t.Fatalf("call 1: %s %v", res, err)
	}
	_, err = conn.Call(ctx, 2, json.RawMessage(`{"p":"7"}`), nil)
	var se *errdefs.SkillError
	if !errors.As(err, &se) || se.Type != "ValueError" || se.Traceback != "tb" {
		t.Fatalf("call 2: %v", err)
	}
	if res, err := conn.Call(ctx, 3, json.RawMessage(`{"p":"8"}`), nil); err != nil || string(res) != `{"p":8}` {
		t.Fatalf("call 3 (still usable after a skill error): %s %v", res, err)
	}
}

// An error's type, which the audit log records, is cut to 256 bytes: a
// forged one of a megabyte made the audit record unreadable.
func TestConnClipsErrorType(t *testing.T) {
	long := strings.Repeat("E", 1<<19)
	conn := fakeWorker(t, func([]byte) []byte {
		return frame(`{"type":"error","id":1,"error":{"kind":"exception","type":"` + long + `","message":"m"}}`)
	})
	_, err := conn.Call(tctx(t, 30*time.Second), 1, nil, nil)
	var se *errdefs.SkillError
	if !errors.As(err, &se) || se.Type != long[:maxErrorType]+"…" {
		t.Fatalf("err = %.100v", err)
	}
}

func TestConnWorkerGone(t *testing.T) {
	reqR, reqW, _ := os.Pipe()
	repR, repW, _ := os.Pipe()
	defer reqR.Close()
	conn := NewConn(reqW, repR, 0)
	defer conn.Close()
	go func() {
		ReadFrame(reqR, DefaultMaxFrame)
		repW.Write([]byte{0, 0}) // half a header, then death
		repW.Close()
	}()
	_, err := conn.Call(shortCtx(t), 1, nil, nil)
	var se *errdefs.SkillError
	if !errors.Is(err, ErrWorkerClosed) || !errors.As(err, &se) || se.Type != TypeWorkerExited {
		t.Fatalf("err = %v", err)
	}
}

func TestCapture(t *testing.T) {
	c := NewCapture(10)
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); c.Write([]byte("abc")) }()
	}
	wg.Wait()
	if !c.Truncated() || c.Dropped() != 20 {
		t.Fatalf("dropped %d", c.Dropped())
	}
	if got := string(c.Bytes()); got != "abcabcabca\n[skillbox: output truncated, 20 more bytes]" {
		t.Fatalf("bytes %q", got)
	}
	if got := string(c.Tail(4)); got != "cabc" {
		t.Fatalf("tail %q", got)
	}
	c.Write(bytes.Repeat([]byte("z"), 10000))
	if got := c.Tail(5000); len(got) != tailSize || got[0] != 'z' {
		t.Fatalf("tail len %d", len(got))
	}
	c.Reset()
	c.Write([]byte("ok"))
	if string(c.Bytes()) != "ok" || c.Truncated() {
		t.Fatal("reset")
	}
}

// TestCaptureResetAfter: after ResetAfter, nothing written before the
// mark is recorded, however the writes split the mark, and what follows
// it is; Marked counts what was skipped.
func TestCaptureResetAfter(t *testing.T) {
	const mark = "<mark-1234>"
	stream := "late output<mark-12" + "<mark-1234>" + "next <mark-1234> call"
	for split := 1; split <= len(stream); split++ {
		c := NewCapture(1 << 10)
		c.Write([]byte("before"))
		c.ResetAfter([]byte(mark))
		if seen, _ := c.Marked(); seen {
			t.Fatal("Marked: seen before the mark was written")
		}
		for s := stream; s != ""; {
			k := min(split, len(s))
			c.Write([]byte(s[:k]))
			s = s[k:]
		}
		if got, want := string(c.Bytes()), "next <mark-1234> call"; got != want {
			t.Fatalf("split %d: bytes %q, want %q", split, got, want)
		}
		if got := string(c.Tail(100)); got != "next <mark-1234> call" {
			t.Fatalf("split %d: tail %q", split, got)
		}
		if seen, skipped := c.Marked(); !seen || skipped != int64(len("late output<mark-12")) {
			t.Fatalf("split %d: Marked() = %v, %d; want true, %d", split, seen, skipped, len("late output<mark-12"))
		}
	}
	c := NewCapture(1 << 10)
	c.ResetAfter([]byte(mark))
	c.Write(bytes.Repeat([]byte("x"), 100000))
	if seen, skipped := c.Marked(); seen || skipped != 100000-int64(len(mark)-1) || len(c.Bytes()) != 0 {
		t.Fatalf("no mark: Marked() = %v, %d, bytes %d", seen, skipped, len(c.Bytes()))
	}
	c.Reset()
	c.Write([]byte("ok"))
	if seen, _ := c.Marked(); !seen || string(c.Bytes()) != "ok" {
		t.Fatal("Reset does not end ResetAfter")
	}
}

// TestWriteCall: a call frame with its params spliced in reads as the
// one WriteFrame encodes, small or large (written in pieces), and params
// that are not JSON fail as they did.
func TestWriteCall(t *testing.T) {
	big := `{"data":"` + strings.Repeat("x", 3*bigParams) + `"}`
	for _, params := range []string{`{}`, `{"a": [1, 2.5e3, "é\u00e9<>&"]}`, " {\n\"a\":null}\t", big} {
		for _, call := range []Call{
			{Type: TypeCall, ID: 7, Params: json.RawMessage(params)},
			{Type: TypeCall, ID: 1 << 40, Params: json.RawMessage(params), Config: map[string]string{"K": `"params":null`}, NetHint: true},
		} {
			var got, want bytes.Buffer
			if err := WriteCall(&got, call); err != nil {
				t.Fatal(err)
			}
			if err := WriteFrame(&want, call); err != nil {
				t.Fatal(err)
			}
			g, err := ReadFrame(&got, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			w, _ := ReadFrame(&want, 1<<30)
			var gv, wv any
			if err := json.Unmarshal(g, &gv); err != nil {
				t.Fatalf("%.200s: %v", g, err)
			}
			json.Unmarshal(w, &wv)
			if !reflect.DeepEqual(gv, wv) {
				t.Errorf("WriteCall frame %.200s, WriteFrame %.200s", g, w)
			}
			if got.Len() != 0 {
				t.Errorf("%d bytes after the frame", got.Len())
			}
		}
	}
	for _, bad := range []string{`{"a":`, `{} {}`, "{\"a\":\"\x01\"}"} {
		if err := WriteCall(io.Discard, Call{Type: TypeCall, ID: 1, Params: json.RawMessage(bad)}); err == nil {
			t.Errorf("params %q: no error", bad)
		}
	}
	// Large params are checked while they are written: invalid, the frame
	// is left unfinished, so a worker never reads it.
	long := strings.Repeat("x", 3*bigParams)
	for _, bad := range []string{`{"data":"` + long, `{"data":"` + long + `"} {}`, `{"data":"` + long + "\x01\"}"} {
		var got bytes.Buffer
		if err := WriteCall(&got, Call{Type: TypeCall, ID: 1, Params: json.RawMessage(bad)}); err == nil {
			t.Errorf("large params %.20q...: no error", bad)
		}
		if f, err := ReadFrame(&got, 1<<30); err == nil {
			t.Errorf("large invalid params: a frame of %d bytes was written whole", len(f))
		}
	}
}

// BenchmarkWriteCall1MB writes a call frame with 1 MB of params: params
// spliced in ("splice") and encoded by encoding/json ("encode", what
// WriteCall replaced), alternated in one run.
func BenchmarkWriteCall1MB(b *testing.B) {
	call := Call{Type: TypeCall, ID: 1, Params: json.RawMessage(`{"data":"` + strings.Repeat("abcdefghij", 1e5) + `"}`)}
	for _, m := range []struct {
		name  string
		write func(io.Writer, Call) error
	}{
		{"splice", WriteCall},
		{"encode", func(w io.Writer, c Call) error { return WriteFrame(w, c) }},
	} {
		b.Run(m.name, func(b *testing.B) {
			b.SetBytes(int64(len(call.Params)))
			for b.Loop() {
				if err := m.write(io.Discard, call); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestParseBigReply: a large reply frame decodes as json.Unmarshal
// decodes it, whatever the case or repetition of its keys, and frames it
// refuses are left to it.
func TestParseBigReply(t *testing.T) {
	big := `"` + strings.Repeat("y", bigReply) + `"`
	for _, p := range []string{
		`{"type":"result","id":3,"result":{"data":` + big + `}}`,
		` {"result" : ` + big + ` , "type":"result","id":3, "net_attempts":[{"host":"a","port":1}]} `,
		`{"type":"result","id":3,"result":1,"RESULT":` + big + `}`,
		`{"type":"result","id":3,"result":` + big + `,"Result":null}`,
		`{"type":"result","id":3,"r\u0065sult":` + big + `}`,
		`{"type":"error","id":3,"error":{"kind":"exception","type":"E","message":` + big + `}}`,
	} {
		want := new(Reply)
		if err := json.Unmarshal([]byte(p), want); err != nil {
			t.Fatal(err)
		}
		got, ok := parseBigReply([]byte(p))
		if !ok {
			if bytes.Contains(bytes.ToLower([]byte(p)), []byte("result\"")) {
				t.Errorf("%.80s: refused", p)
			}
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%.80s: got %+v, want %+v", p, got, want)
		}
	}
	for _, p := range []string{`{"type":"result","result":` + big, `[` + big + `]`, `{"type":"result","id":"x","result":` + big + `}`} {
		if _, ok := parseBigReply([]byte(p)); ok {
			t.Errorf("%.80s: accepted", p)
		}
	}
}

// BenchmarkParseReply1MB decodes a reply frame with a 1 MB result:
// parseReply ("scan") and json.Unmarshal, what it replaced, alternated.
func BenchmarkParseReply1MB(b *testing.B) {
	payload := []byte(`{"type":"result","id":1,"result":{"data":"` + strings.Repeat("abcdefghij", 1e5) + `"}}`)
	fail := func(err error) error { return err }
	b.Run("scan", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			if _, err := parseReply(payload, fail); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			var rep Reply
			if err := json.Unmarshal(payload, &rep); err != nil {
				b.Fatal(err)
			}
		}
	})
}
