package bench

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const msec = time.Millisecond

func TestSummarize(t *testing.T) {
	tests := []struct {
		name    string
		samples []time.Duration
		want    Stats
	}{
		{"none", nil, Stats{}},
		{"one", []time.Duration{7 * msec}, Stats{N: 1, P50: 7 * msec, P90: 7 * msec, Mean: 7 * msec}},
		{"unsorted", []time.Duration{5 * msec, 1 * msec, 3 * msec, 2 * msec, 4 * msec}, Stats{N: 5, P50: 3 * msec, P90: 5 * msec, Mean: 3 * msec}},
		{"ten", []time.Duration{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, Stats{N: 10, P50: 6, P90: 10, Mean: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.samples)
			if diff := cmp.Diff(tt.want, Summarize(tt.samples)); diff != "" {
				t.Errorf("Summarize (-want +got):\n%s", diff)
			}
			if !slices.Equal(in, tt.samples) {
				t.Error("Summarize reordered its argument")
			}
		})
	}
}

func TestRowsRatios(t *testing.T) {
	res := []*result{
		{mode: Mode{Name: "bare", Kind: Process, Baseline: true}, lat: []time.Duration{40 * msec, 40 * msec}, cpu: []time.Duration{30 * msec, 30 * msec}},
		{mode: Mode{Name: "server", Kind: Call, Baseline: true}, lat: []time.Duration{msec / 2, msec / 2}},
		{mode: Mode{Name: "sandbox", Kind: Process}, lat: []time.Duration{60 * msec, 60 * msec}, cpu: []time.Duration{45 * msec, 45 * msec}},
		{mode: Mode{Name: "served", Kind: Call}, lat: []time.Duration{2 * msec, 2 * msec}, callCPU: 10 * msec, callN: 4},
		{mode: Mode{Name: "missing", Kind: Process}, skip: "not installed"},
	}
	want := []Row{
		{Name: "bare", Kind: Process, Baseline: true, N: 2, P50MS: 40, P90MS: 40, MeanMS: 40, CPUMS: 30, CPUVsProcess: 1, VsProcess: 1, VsCall: 80, OverCallMS: 39.5},
		{Name: "server", Kind: Call, Baseline: true, N: 2, P50MS: 0.5, P90MS: 0.5, MeanMS: 0.5, VsProcess: 0.0125, VsCall: 1},
		{Name: "sandbox", Kind: Process, N: 2, P50MS: 60, P90MS: 60, MeanMS: 60, CPUMS: 45, CPUVsProcess: 1.5, VsProcess: 1.5, VsCall: 120, OverCallMS: 59.5},
		{Name: "served", Kind: Call, N: 2, P50MS: 2, P90MS: 2, MeanMS: 2, CPUMS: 2.5, CPUVsProcess: 0.08333, VsProcess: 0.05, VsCall: 4, OverCallMS: 1.5},
		{Name: "missing", Kind: Process, Skipped: "not installed"},
	}
	if diff := cmp.Diff(want, rows(res)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

// A missing baseline leaves its ratio column empty rather than dividing by zero.
func TestRowsWithoutCallBaseline(t *testing.T) {
	got := rows([]*result{{mode: Mode{Name: "bare", Kind: Process, Baseline: true}, lat: []time.Duration{msec}}})
	if got[0].VsCall != 0 || got[0].OverCallMS != 0 || got[0].VsProcess != 1 {
		t.Errorf("got %+v", got[0])
	}
}

func TestPeerModesSkipMissing(t *testing.T) {
	host := PeerHost{
		Python:   Python{Exe: "/usr/bin/python3", Dir: "/skills/text/word_stats", Params: "{}"},
		Tmp:      t.TempDir(),
		LookPath: func(string) (string, error) { return "", errors.New("not found") },
		Root:     true,
	}
	got := PeerModes(host, []string{"bwrap", "runsc", "nosuch"})
	want := []string{
		"bwrap not installed (apt-get install bubblewrap)",
		"runsc not installed (apt-get install runsc)",
		"unknown peer (known: bwrap, firejail, runc, runsc)",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d modes, want %d", len(got), len(want))
	}
	for i, m := range got {
		if m.Skip != want[i] || m.Kind != Process || m.Argv != nil {
			t.Errorf("mode %d: %+v, want skipped with %q", i, m, want[i])
		}
	}
}

func TestPeerModesNeedRoot(t *testing.T) {
	host := PeerHost{Python: Python{Exe: "/usr/bin/python3", Dir: "/s", Params: "{}"}, Tmp: t.TempDir(),
		LookPath: func(name string) (string, error) { return "/usr/bin/" + name, nil }}
	for _, m := range PeerModes(host, []string{"runc", "runsc"}) {
		if !strings.HasSuffix(m.Skip, "needs root here") {
			t.Errorf("%s: Skip %q, want a note that it needs root", m.Name, m.Skip)
		}
	}
}

func TestPeerModesCommands(t *testing.T) {
	py := Python{Exe: "/opt/py/bin/python3", Dir: "/skills/text/word_stats", Params: `{"a":1}`}
	tmp := t.TempDir()
	host := PeerHost{Python: py, Prefixes: []string{"/opt/py", "/usr"}, Tmp: tmp, Root: true,
		LookPath: func(name string) (string, error) { return "/usr/bin/" + name, nil }}
	modes := PeerModes(host, PeerNames())
	if len(modes) != 4 {
		t.Fatalf("got %d modes", len(modes))
	}
	for _, m := range modes {
		if m.Skip != "" {
			t.Fatalf("%s skipped: %s", m.Name, m.Skip)
		}
	}
	// Every wrapper but the OCI runtimes (their process is in the bundle)
	// ends with the bare baseline's command line.
	for _, m := range modes[:2] {
		if !slices.Equal(m.Argv[len(m.Argv)-len(py.Argv()):], py.Argv()) {
			t.Errorf("%s: %q does not end with the bare run", m.Name, m.Argv)
		}
	}
	bw := strings.Join(modes[0].Argv, " ")
	for _, want := range []string{"--unshare-all", "--ro-bind /usr /usr", "--ro-bind /opt/py /opt/py", "--ro-bind /skills/text/word_stats /skills/text/word_stats", "--clearenv"} {
		if !strings.Contains(bw, want) {
			t.Errorf("bwrap command lacks %q: %s", want, bw)
		}
	}
	if !slices.Contains(modes[1].Argv, "--net=none") {
		t.Errorf("firejail command has a network: %q", modes[1].Argv)
	}
	if !slices.Contains(modes[3].Argv, "--platform=ptrace") || !slices.Contains(modes[3].Argv, "--network=none") {
		t.Errorf("runsc command: %q", modes[3].Argv)
	}
	b, err := os.ReadFile(filepath.Join(tmp, "oci-bundle", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var config struct {
		Process struct {
			Args []string `json:"args"`
		} `json:"process"`
		Root struct {
			Readonly bool `json:"readonly"`
		} `json:"root"`
		Mounts []struct {
			Destination string   `json:"destination"`
			Options     []string `json:"options"`
		} `json:"mounts"`
		Linux struct {
			Namespaces []struct {
				Type string `json:"type"`
			} `json:"namespaces"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(b, &config); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(config.Process.Args, py.Argv()) || !config.Root.Readonly {
		t.Errorf("bundle process %q, read-only root %v", config.Process.Args, config.Root.Readonly)
	}
	binds := map[string]bool{}
	for _, m := range config.Mounts {
		if slices.Contains(m.Options, "rbind") {
			binds[m.Destination] = slices.Contains(m.Options, "ro")
		}
	}
	if diff := cmp.Diff(map[string]bool{"/usr": true, "/opt/py": true, "/skills/text/word_stats": true}, binds); diff != "" {
		t.Errorf("bundle binds (-want +got, true: read-only):\n%s", diff)
	}
	if !slices.ContainsFunc(config.Linux.Namespaces, func(n struct {
		Type string `json:"type"`
	}) bool {
		return n.Type == "network"
	}) {
		t.Error("the bundle shares the host's network namespace")
	}
}

// fakeCaller answers every call with out, or fails with err.
type fakeCaller struct {
	out    string
	err    error
	closed *bool
}

func (f fakeCaller) Call(context.Context) (json.RawMessage, error) {
	if f.err != nil {
		return nil, f.err
	}
	return json.RawMessage(f.out), nil
}

func (f fakeCaller) Close() error {
	if f.closed != nil {
		*f.closed = true
	}
	return nil
}

func fake(name string, baseline bool, c fakeCaller) Mode {
	return Mode{Name: name, Kind: Call, Baseline: baseline, Open: func(context.Context) (Caller, error) { return c, nil }}
}

func TestRunSkipsWhatFails(t *testing.T) {
	var closed bool
	modes := []Mode{
		{Name: "missing", Kind: Process, Skip: "not installed"},
		{Name: "no such binary", Kind: Process, Argv: []string{filepath.Join(t.TempDir(), "nosuch")}},
		fake("fails", false, fakeCaller{err: errors.New("boom")}),
		fake("differs", false, fakeCaller{out: `{"n": 2}`}),
		fake("cannot start", false, fakeCaller{}),
		fake("server", true, fakeCaller{out: `{"n":1}`, closed: &closed}),
		fake("same", false, fakeCaller{out: ` { "n" : 1 } `}),
	}
	modes[4].Open = func(context.Context) (Caller, error) { return nil, errors.New("no port") }
	rep, err := Run(context.Background(), Config{Rounds: 2, Calls: 3}, modes)
	if err != nil {
		t.Fatal(err)
	}
	if !closed {
		t.Error("the baseline's caller was not closed")
	}
	skips := map[string]string{}
	for _, r := range rep.Rows {
		skips[r.Name] = r.Skipped
		if r.Skipped != "" && r.N != 0 {
			t.Errorf("%s: skipped with %d samples", r.Name, r.N)
		}
	}
	for name, want := range map[string]string{
		"missing":        "not installed",
		"no such binary": "no such file",
		"fails":          "boom",
		"differs":        `differs from the first baseline's {"n":1}`,
		"cannot start":   "start: no port",
		"server":         "",
		"same":           "",
	} {
		if got := skips[name]; (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("%s: skipped %q, want %q", name, got, want)
		}
	}
	for _, r := range rep.Rows {
		if r.Skipped == "" && (r.N != 6 || r.VsCall == 0) {
			t.Errorf("%s: n %d, ratio %v; want 2 rounds × 3 calls and a ratio", r.Name, r.N, r.VsCall)
		}
	}
	if rep.Rounds != 2 || rep.CallsPerRound != 3 || rep.LoadBefore == "" || rep.LoadAfter == "" {
		t.Errorf("report %+v", rep)
	}
}

func TestRunFailingBaseline(t *testing.T) {
	_, err := Run(context.Background(), Config{Rounds: 1, Calls: 1}, []Mode{fake("server", true, fakeCaller{err: errors.New("down")})})
	if err == nil || !strings.Contains(err.Error(), "server: down") {
		t.Errorf("err %v, want the baseline's failure", err)
	}
}

func TestMarkdown(t *testing.T) {
	rep := &Report{Rows: rows([]*result{
		{mode: Mode{Name: "bare", Kind: Process, Baseline: true}, lat: []time.Duration{40 * msec}, cpu: []time.Duration{30 * msec}},
		{mode: Mode{Name: "server", Kind: Call, Baseline: true}, lat: []time.Duration{msec / 4}},
		{mode: Mode{Name: "runsc", Kind: Process}, skip: "runsc needs root | here"},
	})}
	want := `| mode | per call | p50 ms | p90 ms | p50 / bare process | p50 / in-process server | p50 − in-process server, ms | CPU ms per call | CPU / bare |
|---|---|---:|---:|---:|---:|---:|---:|---:|
| bare (baseline) | whole process | 40.0 | 40.0 | 1.00× | 160× | +39.75 | 30.0 | 1.00× |
| server (baseline) | call to a running process | 0.250 | 0.250 | 0.0063× | 1.00× | +0.00 | — | — |
| runsc | whole process | skipped: runsc needs root \| here | | | | | | |
`
	if diff := cmp.Diff(want, rep.Markdown()); diff != "" {
		t.Errorf("Markdown (-want +got):\n%s", diff)
	}
}

func TestUpdateDoc(t *testing.T) {
	const (
		heading = "## Peers"
		begin   = "<!-- b -->"
		end     = "<!-- e -->"
	)
	tests := []struct{ name, in, want string }{
		{"appended", "# Doc\n\ntext\n", "# Doc\n\ntext\n\n## Peers\n\n<!-- b -->\nTABLE\n<!-- e -->\n"},
		{"under its heading", "# Doc\n\n## Peers\n\nprose\n", "# Doc\n\n## Peers\n\n<!-- b -->\nTABLE\n<!-- e -->\n\nprose\n"},
		{"replaced", "## Peers\n\n<!-- b -->\nold\n<!-- e -->\n\nprose\n", "## Peers\n\n<!-- b -->\nTABLE\n<!-- e -->\n\nprose\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "PERF.md")
			if err := os.WriteFile(path, []byte(tt.in), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := UpdateDoc(path, heading, begin, end, "TABLE\n"); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
