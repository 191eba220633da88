package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLogAppendsOneLinePerRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "skillbox", "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Write(Record{Event: EventCall, Skill: "text/word_stats", Outcome: "ok", ParamsSHA256: HashParams([]byte(`{"text":"secret"}`))}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	f, _ := os.Open(path)
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		if r.Time.IsZero() || r.Skill != "text/word_stats" {
			t.Errorf("line %d: bad record %+v", n+1, r)
		}
		if string(sc.Bytes()) == "" || json.Valid(sc.Bytes()) == false {
			t.Errorf("line %d not JSON", n+1)
		}
		n++
	}
	if n != 50 {
		t.Errorf("got %d lines, want 50", n)
	}
}

func TestHashParamsHidesParams(t *testing.T) {
	h := HashParams([]byte(`{"text":"secret"}`))
	if len(h) != 64 || h == HashParams([]byte(`{"text":"other"}`)) {
		t.Errorf("bad hash %q", h)
	}
}

func TestDefaultPath(t *testing.T) {
	env := map[string]string{"XDG_STATE_HOME": "/x/state", "HOME": "/home/u"}
	if got := DefaultPath(func(k string) string { return env[k] }); got != "/x/state/skillbox/audit.jsonl" {
		t.Errorf("got %q", got)
	}
	env["XDG_STATE_HOME"] = "relative" // the XDG spec says ignore relative paths
	if got := DefaultPath(func(k string) string { return env[k] }); got != "/home/u/.local/state/skillbox/audit.jsonl" {
		t.Errorf("got %q", got)
	}
}

func TestReadToleratesTornAndMalformedLines(t *testing.T) {
	now := time.Now().UTC()
	old := now.Add(-2 * time.Hour)
	var buf bytes.Buffer
	l := New(&buf)
	l.Write(Record{Time: old, Event: EventCall, Skill: "a/b", Outcome: "ok"})
	buf.WriteString("not json\n")
	l.Write(Record{Time: now, Event: EventDenied, Skill: "c/d", Outcome: "error"})
	buf.WriteString("\n")
	l.Write(Record{Time: now, Event: EventTrust, Skill: "a/b", Outcome: "ok"})
	buf.WriteString(`{"time":"2025-01-01T00:00:00Z","event":"ca`) // torn
	recs, problems, err := Read(bytes.NewReader(buf.Bytes()), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Errorf("got %d records, want 3", len(recs))
	}
	if len(problems) != 2 || problems[0].Line != 2 || problems[0].Torn || problems[1].Line != 6 || !problems[1].Torn {
		t.Errorf("problems = %+v; want line 2 malformed and line 6 torn", problems)
	}
	if !strings.Contains(problems[1].String(), "torn") || !strings.Contains(problems[0].String(), "line 2: malformed") {
		t.Errorf("problem text: %s / %s", problems[0], problems[1])
	}
	recs, _, _ = Read(bytes.NewReader(buf.Bytes()), Filter{Skill: "a/b", Since: now.Add(-time.Hour)})
	if len(recs) != 1 || recs[0].Event != EventTrust {
		t.Errorf("filter: %+v", recs)
	}
	// A complete last line without a newline is a record, not a tear.
	recs, problems, _ = Read(strings.NewReader(`{"event":"call","skill":"x/y","outcome":"ok"}`), Filter{})
	if len(recs) != 1 || len(problems) != 0 {
		t.Errorf("unterminated complete line: %v %v", recs, problems)
	}
	// An over-long line is a problem, not a failure.
	recs, problems, _ = Read(strings.NewReader(strings.Repeat("x", maxLine+10)+"\n"+`{"event":"call"}`+"\n"), Filter{})
	if len(recs) != 1 || len(problems) != 1 || problems[0].Line != 1 {
		t.Errorf("long line: %v %v", recs, problems)
	}
}

func TestDefaultPathOverride(t *testing.T) {
	env := map[string]string{"XDG_STATE_HOME": "/state", PathEnv: "/var/log/sb.jsonl"}
	if got := DefaultPath(func(k string) string { return env[k] }); got != "/var/log/sb.jsonl" {
		t.Errorf("DefaultPath = %s", got)
	}
	env[PathEnv] = "relative.jsonl"
	if got := DefaultPath(func(k string) string { return env[k] }); got != "/state/skillbox/audit.jsonl" {
		t.Errorf("DefaultPath = %s", got)
	}
}

// A warm call's record says so; any other record has no "warm" key.
func TestWarmField(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf)
	l.Write(Record{Event: EventCall, Skill: "a/b", Outcome: "ok", Warm: true})
	l.Write(Record{Event: EventCall, Skill: "a/b", Outcome: "ok"})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"warm":true`) || strings.Contains(lines[1], `"warm"`) {
		t.Fatalf("records:\n%s", buf.String())
	}
	recs, _, _ := Read(strings.NewReader(buf.String()), Filter{})
	if len(recs) != 2 || !recs[0].Warm || recs[1].Warm {
		t.Errorf("read back: %+v", recs)
	}
}

// An audit log that other users may write (a file they made in a shared
// folder, or one made group- or world-writable) is one they can forge or
// erase records in: Open refuses it, as the trust store is refused, and
// refuses what is not a regular file.
func TestOpenRefusesALogOthersMayWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o666, 0o620, 0o602} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		l, err := Open(path)
		if err == nil {
			l.Close()
			t.Errorf("mode %v: opened, want a refusal", mode)
		} else if !strings.Contains(err.Error(), "chmod") {
			t.Errorf("mode %v: %v, want the chmod that fixes it", mode, err)
		}
	}
	os.Chmod(path, 0o644)
	l, err := Open(path)
	if err != nil {
		t.Fatalf("mode 0644: %v", err)
	}
	l.Close()
	if _, err := Open(dir); err == nil {
		t.Error("a folder opened as the log")
	}
}

// A call's record is bounded whatever the skill's folder holds: a manifest
// of 20,000 required env_vars gave each call 20,000 warnings (2.6 MB of
// audit record per call from a 540 KB manifest), and an error may quote a
// build's output.
func TestRecordIsBounded(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf)
	ws := make([]string, 20000)
	for i := range ws {
		ws[i] = fmt.Sprintf("env V%05d: skill cat/e requires it (env_vars) and it is not granted, so the skill runs without it", i)
	}
	ws[0] = strings.Repeat("w", 1<<20)
	r := Record{Event: EventCall, Skill: "cat/e", Outcome: "error", Error: strings.Repeat("e", 1<<20), Warnings: ws}
	if err := l.Write(r); err != nil {
		t.Fatal(err)
	}
	if n := buf.Len(); n > 256<<10 {
		t.Errorf("a record of %d bytes", n)
	}
	var got Record
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if last := got.Warnings[len(got.Warnings)-1]; !strings.Contains(last, "19968 more warnings") {
		t.Errorf("last warning %q does not count those left out", last)
	}
	if len(ws[0]) != 1<<20 || len(r.Warnings) != 20000 {
		t.Error("Write changed the caller's warnings")
	}
}
