package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
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
