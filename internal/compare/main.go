// Command compare runs the same stdlib skill through a bare python3,
// `skillbox run`, `skillbox serve` (HTTP API and MCP over stdio) and the
// peer sandboxes found on this host (bubblewrap, firejail, runc, gVisor's
// runsc), each as it is normally used, alternated round by round in one
// run (issue 17, target 5), and writes the table into docs/PERFORMANCE.md.
// scripts/compare builds and runs it; it reports and never fails on
// slowness, and a peer that is missing or fails is a row with a note.
//
// With -served it measures only the fixed overhead of a served single-use
// call (issue 17, target 1): calls -gap apart to the in-process Python
// server and to serve --http and --stdio, of -skillbox and of an earlier
// build (-before), alternated; it prints the table.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/skillbox-dev/skillbox/internal/bench"
	"github.com/skillbox-dev/skillbox/internal/schema"
)

const (
	heading = "## Peers (issue 17)"
	begin   = "<!-- compare: begin (scripts/compare writes between these lines) -->"
	end     = "<!-- compare: end -->"
)

func main() {
	var (
		rounds   = flag.Int("n", 20, "rounds: each runs every whole-process mode once and makes -calls calls of every served mode")
		calls    = flag.Int("calls", 10, "calls per round to each running server")
		skillbox = flag.String("skillbox", "", "the skillbox binary (required)")
		python   = flag.String("python", "/usr/bin/python3", "the interpreter, for every mode (exported as SKILLBOX_PYTHON)")
		skillID  = flag.String("skill", "text/word_stats", "the skill id skillbox runs")
		skillDir = flag.String("dir", "examples/skills/text/word_stats", "the same skill's folder, for the bare runs and the peers")
		params   = flag.String("params", `{"text":"The quick brown fox. The lazy dog!","top":3}`, "the call's params")
		peerList = flag.String("peers", strings.Join(bench.PeerNames(), ","), "peers to run, comma-separated (empty: none)")
		doc      = flag.String("doc", "", "update this file's \""+heading+"\" section with the table")
		label    = flag.String("label", "", "a note put under the table")
		command  = flag.String("command", "scripts/compare", "the command line the table says it came from")
		gapFlag  = flag.Duration("gap", 250*time.Millisecond, "pause before each call of the spaced serve row")
		before   = flag.String("before", "", "with -large or -served: an earlier skillbox binary, measured alternately with -skillbox")
		served   = flag.Bool("served", false, "measure only served single-use calls -gap apart instead (issue 17 target 1): the in-process Python server (the baseline, spaced the same), serve --http and serve --stdio; prints the table")
		large    = flag.Bool("large", false, "measure large parameters and results instead (issue 17 target 2): params of 1 KB, 100 KB, 1 MB and a 1 MB result, in-process Python server against serve --http")
	)
	flag.Parse()
	if *skillbox == "" {
		fmt.Fprintln(os.Stderr, "compare: -skillbox is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *large {
		if err := runParams(ctx, *rounds, *calls, *skillbox, *before, *python, *doc, *label, *command, *gapFlag); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
		return
	}
	if *served {
		if err := runServed(ctx, *rounds, *calls, *skillbox, *before, *python, *skillID, *skillDir, *params, *command, *gapFlag); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, *rounds, *calls, *skillbox, *python, *skillID, *skillDir, *params, *peerList, *doc, *label, *command, *gapFlag); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, rounds, calls int, sbExe, python, skillID, skillDir, params, peerList, doc, label, command string, gap time.Duration) error {
	tmp, dir, err := workDirs("compare", skillDir)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if sbExe, err = filepath.Abs(sbExe); err != nil {
		return err
	}
	py := bench.Python{Exe: python, Dir: dir, Params: params}
	sb := bench.Skillbox{Exe: sbExe, Env: skillboxEnv(tmp, python), Dir: tmp, ID: skillID, Params: params}
	var names []string
	for _, n := range strings.Split(peerList, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	host := bench.PeerHost{Python: py, Tmp: tmp, LookPath: exec.LookPath, Root: os.Geteuid() == 0}
	if out, err := exec.Command(python, "-I", "-c", "import sys; print(sys.base_prefix)").Output(); err == nil {
		host.Prefixes = []string{strings.TrimSpace(string(out))}
	}

	modes := []bench.Mode{
		{Name: "bare python3, skill in-process", Kind: bench.Process, Baseline: true, Argv: py.Argv()},
		sb.RunMode("skillbox run (default backend)", ""),
	}
	modes = append(modes, bench.PeerModes(host, names)...)
	spaced := sb.ServeHTTPMode(fmt.Sprintf("same, calls %v apart (the next child ready)", gap))
	spaced.Gap = gap
	server := py.HTTPMode("in-process Python HTTP server (http.server, kept-alive)")
	server.Baseline = true
	modes = append(modes, server,
		py.LinesMode("python3 worker over a pipe, skill imported once"),
		sb.ServeHTTPMode("skillbox serve --http, HTTP API (default backend, single-use), back to back"),
		spaced,
		sb.MCPStdioMode("skillbox serve --stdio, MCP tools/call, back to back", schema.ToolName(skillID)),
	)
	rep, err := bench.Run(ctx, bench.Config{Rounds: rounds, Calls: calls, Progress: os.Stderr, Reap: true}, modes)
	if err != nil {
		return err
	}
	rep.Skill, rep.Python, rep.PythonVersion = skillID, python, py.Version()
	var b strings.Builder
	fmt.Fprintf(&b, "`%s`, %s.\n\n", command, rep.Header())
	b.WriteString(rep.Markdown())
	if label != "" {
		fmt.Fprintf(&b, "\n%s\n", label)
	}
	fmt.Print(b.String())
	if doc != "" {
		return bench.UpdateDoc(doc, heading, begin, end, b.String())
	}
	return nil
}

// skillboxEnv is the environment skillbox runs with: its cache, state and
// config in the run's own folders under tmp (the audit log does not grow
// in the user's), warmed by the first round; SKILLWARE_SKILL_PATH is
// dropped so that an id resolves to the bundled skill.
func skillboxEnv(tmp, python string) []string {
	env := []string{"SKILLBOX_PYTHON=" + python,
		"XDG_CACHE_HOME=" + filepath.Join(tmp, "cache"),
		"XDG_STATE_HOME=" + filepath.Join(tmp, "state"),
		"XDG_CONFIG_HOME=" + filepath.Join(tmp, "config")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SKILLWARE_SKILL_PATH=") && !strings.HasPrefix(kv, "SKILLBOX_PYTHON=") && !strings.HasPrefix(kv, "XDG_") {
			env = append(env, kv)
		}
	}
	return env
}

// runServed measures the fixed overhead of a served single-use call (issue
// 17, target 1): every call gap after the previous one, so that the next
// call's child is forked and has imported the skill, in the in-process
// Python server (the baseline, spaced the same: an idle server's wake-up
// is part of both), serve --http and serve --stdio of sbExe and, when set,
// of before (an earlier build), alternated round by round. It prints the
// table; it writes nothing.
func runServed(ctx context.Context, rounds, calls int, sbExe, before, python, skillID, skillDir, params, command string, gap time.Duration) error {
	tmp, dir, err := workDirs("compare-served", skillDir)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	py := bench.Python{Exe: python, Dir: dir, Params: params}
	base := py.HTTPMode(fmt.Sprintf("in-process Python HTTP server, calls %v apart", gap))
	base.Baseline, base.Gap = true, gap
	modes := []bench.Mode{base}
	for _, b := range []struct{ label, exe string }{{"", sbExe}, {"before: ", before}} {
		if b.exe == "" {
			continue
		}
		exe, err := filepath.Abs(b.exe)
		if err != nil {
			return err
		}
		// Each binary its own folders: their sealed bundles and audit logs
		// apart.
		own := filepath.Join(tmp, fmt.Sprint(len(modes)))
		if err := os.MkdirAll(own, 0o700); err != nil {
			return err
		}
		sb := bench.Skillbox{Exe: exe, Env: skillboxEnv(own, python), Dir: own, ID: skillID, Params: params}
		h := sb.ServeHTTPMode(fmt.Sprintf("%sskillbox serve --http (single-use), calls %v apart", b.label, gap))
		m := sb.MCPStdioMode(fmt.Sprintf("%sskillbox serve --stdio, MCP tools/call, calls %v apart", b.label, gap), schema.ToolName(skillID))
		h.Gap, m.Gap = gap, gap
		modes = append(modes, h, m)
	}
	rep, err := bench.Run(ctx, bench.Config{Rounds: rounds, Calls: calls, Progress: os.Stderr, Reap: true}, modes)
	if err != nil {
		return err
	}
	rep.Skill, rep.Python, rep.PythonVersion = skillID, python, py.Version()
	fmt.Printf("`%s`, %s.\n\n%s", command, rep.Header(), rep.Markdown())
	return nil
}

// workDirs makes a temporary folder (the caller removes it) and returns it
// with skillDir made absolute.
func workDirs(prefix, skillDir string) (tmp, dir string, err error) {
	if dir, err = filepath.Abs(skillDir); err != nil {
		return "", "", err
	}
	tmp, err = os.MkdirTemp("", prefix)
	return tmp, dir, err
}
