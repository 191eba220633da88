package cli

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// bench --json: one object with the run's facts and a row per mode; the
// whole-process rows run this test binary as skillbox (mainEnv). Only the
// shape is checked: speed is never asserted in tests.
func TestBenchJSON(t *testing.T) {
	h := newHarness(t)
	t.Setenv(mainEnv, "1")
	o := h.run("bench", "--backend", "process", "--n", "1", "--calls", "2", "--json")
	if o.code != 0 {
		t.Fatalf("exit %d: %s %s", o.code, o.stdout, o.stderr)
	}
	env := o.envelope(t)
	for _, k := range []string{"ok", "time", "skill", "python", "python_version", "rounds", "calls_per_round", "cpus", "load_before", "load_after", "rows"} {
		if _, ok := env[k]; !ok {
			t.Errorf("no %q in %s", k, o.stdout)
		}
	}
	if env["ok"] != true || env["skill"] != benchSkill || env["rounds"] != 1.0 || env["calls_per_round"] != 2.0 {
		t.Errorf("envelope %s", o.stdout)
	}
	rows, _ := env["rows"].([]any)
	var names []string
	for _, r := range rows {
		row := r.(map[string]any)
		names = append(names, row["name"].(string))
		if skip, _ := row["skipped"].(string); skip != "" {
			t.Errorf("row %v skipped: %s", row["name"], skip)
			continue
		}
		want := 1.0
		if row["kind"] == "call" {
			want = 2
		}
		if row["n"] != want {
			t.Errorf("row %v: n %v, want %v", row["name"], row["n"], want)
		}
		for _, k := range []string{"p50_ms", "p90_ms", "mean_ms", "vs_process", "vs_call"} {
			if _, ok := row[k].(float64); !ok {
				t.Errorf("row %v: no number %q", row["name"], k)
			}
		}
	}
	wantNames := []string{"bare python3, skill in-process", "python3 worker, skill imported once, over a pipe",
		"skillbox run --backend process", "Runtime.Call, process, single-use, back to back", "Runtime.Call, process, single-use, 250ms apart"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("rows %q, want %q", names, wantNames)
	}
}

// bench --backend linux also measures the linux backend's exec: prestart
// (a jail per call started ahead of it), through a runtime of its own.
func TestBenchLinuxPrestartRows(t *testing.T) {
	if reason := unavailable(context.Background(), "linux"); reason != "" {
		t.Skip("linux backend " + reason)
	}
	h := newHarness(t)
	t.Setenv(mainEnv, "1")
	o := h.run("bench", "--backend", "linux", "--n", "1", "--calls", "2", "--json")
	if o.code != 0 {
		t.Fatalf("exit %d: %s %s", o.code, o.stdout, o.stderr)
	}
	rows, _ := o.envelope(t)["rows"].([]any)
	found := 0
	for _, r := range rows {
		row := r.(map[string]any)
		name, _ := row["name"].(string)
		if !strings.HasPrefix(name, "Runtime.Call, linux exec prestart, single-use, ") {
			continue
		}
		found++
		if skip, _ := row["skipped"].(string); skip != "" || row["n"] != 2.0 {
			t.Errorf("row %q: n %v, skipped %q; want 2 calls", name, row["n"], skip)
		}
	}
	if found != 2 {
		t.Errorf("%d exec prestart rows (back to back, spaced), want 2: %v", found, rows)
	}
}

func TestBenchBadFlags(t *testing.T) {
	h := newHarness(t)
	for _, args := range [][]string{
		{"bench", "--backend", "nosuch", "--json"},
		{"bench", "--n", "0", "--json"},
		{"bench", "extra", "--json"},
	} {
		o := h.run(args...)
		if o.code != 2 {
			t.Errorf("%q: exit %d, want 2 (invalid): %s", args, o.code, o.stdout)
			continue
		}
		if e := o.envelope(t); e["ok"] != false {
			t.Errorf("%q: %s", args, o.stdout)
		}
	}
}
