// Package cli implements the skillbox command line. Run is the whole program
// behind a main of a few lines, so tests call it directly.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/policy"
)

// Env is what the CLI reads from its surroundings; tests replace it.
type Env struct {
	Getenv    func(string) string
	LookupEnv func(string) (string, bool)
	// IsTerminal reports whether r is an interactive terminal; nil is the
	// real check (a tty, not just a character device such as /dev/null).
	IsTerminal func(r io.Reader) bool
}

// OSEnv is the real process environment.
var OSEnv = Env{Getenv: os.Getenv, LookupEnv: os.LookupEnv}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, c *cmdContext, args []string) error
}

// cmdContext is what every subcommand gets.
type cmdContext struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	env            Env
	json           bool // --json given: errors go out as an envelope on stdout
	// policyPath is the --policy file; "" means the default location,
	// where a missing file is the empty policy.
	policyPath string
	// backendSettings are the --backend-setting NAME.KEY=VALUE arguments,
	// laid over the policy file's backends section.
	backendSettings listFlag
	// caFile is the --ca-file (run, serve), added to the policy file's
	// ca_file.
	caFile string
}

func commands() []command {
	return []command{
		{"run", "run a skill once and print its result", cmdRun},
		{"list", "list the skills in every root", cmdList},
		{"inspect", "show a skill's manifest, tier, digest and requests", cmdInspect},
		{"paths", "show the skill roots in search order, their tier, where each comes from and problems", cmdPaths},
		{"schema", "print a skill's tool schema for claude|openai|gemini|ollama|mcp", cmdSchema},
		{"doctor", "show which backends and isolation layers this host offers", cmdDoctor},
		{"setup", "install a backend's runtime (pyodide: Deno + Pyodide from npm)", cmdSetup},
		{"trust", "review a skill's requests and pin its digest; or trust a publisher key", cmdTrust},
		{"untrust", "remove a skill or publisher key from the trust store", cmdUntrust},
		{"keygen", "make a minisign key pair for signing skills", cmdKeygen},
		{"sign", "sign a skill bundle with a minisign secret key", cmdSign},
		{"verify", "check a skill's signature", cmdVerify},
		{"lock", "pin skills, digests and grants in skills.lock", cmdLock},
		{"audit", "read the audit log", cmdAudit},
		{"env", "build, list or prune the per-skill Python environments", cmdEnv},
		{"image", "pull, list, prune or build the cache of unpacked OCI images", cmdImage},
		{"bench", "measure each backend's per-call cost on this host against a bare python3", cmdBench},
		{"serve", "serve skills to agents over MCP (--stdio or --http ADDR) and an HTTP API", cmdServe},
		{"version", "print the module version and the commit it was built from (also --version)", cmdVersion},
	}
}

// Version is set at build time with -ldflags "-X .../internal/cli.Version=...".
var Version = "dev"

// Run runs the skillbox command line with args (without the program name)
// and returns the exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return RunContext(ctx, args, stdin, stdout, stderr, OSEnv)
}

// RunContext is Run with a context and an environment.
func RunContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env Env) int {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		args = append([]string{"version"}, args[1:]...)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	// What reaches a terminal goes through safeWriter: stderr always (the
	// trust review, a skill's output and errors, build logs), stdout when
	// it is a terminal. serve's stdout is MCP's stdio transport.
	if f, ok := stdout.(*os.File); ok && args[0] != "serve" && isatty(f) {
		stdout = safeWriter{stdout}
	}
	c := &cmdContext{stdin: stdin, stdout: stdout, stderr: safeWriter{stderr}, env: env}
	for _, a := range args[1:] {
		if a == "--json" || a == "-json" || a == "--json=true" {
			c.json = true
		}
	}
	for _, cmd := range commands() {
		if cmd.name == args[0] {
			err := cmd.run(ctx, c, args[1:])
			if err == nil {
				return 0
			}
			return c.fail(err)
		}
	}
	return c.fail(errdefs.New(errdefs.Invalid, "unknown command %q (run 'skillbox help')", args[0]))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "skillbox runs AI-agent skills in a sandbox, deny by default.\n\nUsage: skillbox COMMAND [ARGS]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'skillbox COMMAND -h' for a command's flags. Exit codes: 1 skill failed, 2 invalid,\n3 denied, 4 timeout or limit, 5 unavailable or unsupported, 6 internal, 130 canceled.")
}

// errorEnvelope is the --json error shape; part of the CLI contract.
type errorEnvelope struct {
	OK    bool      `json:"ok"`
	Error errorBody `json:"error"`
	// Warnings are those of the call that failed (an extension; only
	// when there are some).
	Warnings []string `json:"warnings,omitempty"`
	// Stdout and Stderr are what the skill printed before its call
	// failed (an extension; only when it printed something).
	Stdout string `json:"stdout,omitempty"`
	Stderr string `json:"stderr,omitempty"`
}

type errorBody struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	// Type and Traceback are set for skill errors (an extension).
	Type      string `json:"type,omitempty"`
	Traceback string `json:"traceback,omitempty"`
}

// fail reports err and returns its exit code.
func (c *cmdContext) fail(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	kind := errdefs.KindOf(err)
	if c.json {
		body := errorBody{Kind: string(kind), Message: err.Error()}
		var se *errdefs.SkillError
		if errors.As(err, &se) {
			body.Type, body.Traceback = se.Type, se.Traceback
		}
		stdout, stderr := errdefs.Output(err)
		writeJSON(c.stdout, errorEnvelope{OK: false, Error: body, Warnings: errdefs.Warnings(err),
			Stdout: string(stdout), Stderr: string(stderr)}, false)
	} else {
		fmt.Fprintf(c.stderr, "skillbox: %s: %s\n", kind, oneLine(withoutKind(err.Error(), kind)))
		// Then the traceback, unless it is the tail of the skill's stderr
		// (a worker that died: WorkerExited quotes it), which follows.
		stdout, stderr := errdefs.Output(err)
		var se *errdefs.SkillError
		if errors.As(err, &se) && se.Traceback != "" && !bytes.HasSuffix(stderr, []byte(se.Traceback)) {
			fmt.Fprint(c.stderr, se.Traceback)
			if !strings.HasSuffix(se.Traceback, "\n") {
				fmt.Fprintln(c.stderr)
			}
		}
		// What the skill printed before it failed, as a successful run
		// shows it.
		c.stderr.Write(stdout)
		c.stderr.Write(stderr)
		// After the error line, which stays the first.
		for _, w := range errdefs.Warnings(err) {
			warn(c.stderr, w)
		}
	}
	return errdefs.ExitCode(kind)
}

// withoutKind drops a leading "KIND: " from msg: the text line already
// starts with the kind, and a message that names it too (a denial's
// "denied: env X: ...") would read "denied: denied: ...". The --json
// message keeps it (scripts match on it).
func withoutKind(msg string, kind errdefs.Kind) string {
	if rest, ok := strings.CutPrefix(msg, string(kind)+": "); ok && rest != "" {
		return rest
	}
	return msg
}

// oneLine folds a multi-line message (several manifest errors) onto one line
// per the contract ("errors as one clear line on stderr"): its lines,
// trimmed, joined by "; ", blank ones left out, tabs and other white
// space that moves the cursor made spaces (a tab would make a column in a
// table). Spaces within a line stay as they are: a quoted path with two
// spaces in a row is shown as it is.
func oneLine(s string) string {
	var b strings.Builder
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		l = strings.TrimSpace(strings.Map(func(r rune) rune {
			if r == '\t' || r == '\v' || r == '\f' {
				return ' '
			}
			return r
		}, l))
		if l == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(l)
	}
	return b.String()
}

// warn writes msg as one warning line: a warning may quote what a skill
// or a project's configuration wrote (a root's path), whose newlines must
// not add lines of their own.
func warn(w io.Writer, msg string) {
	fmt.Fprintf(w, "skillbox: warning: %s\n", oneLine(msg))
}

func writeJSON(w io.Writer, v any, indent bool) error {
	var b []byte
	var err error
	if indent {
		b, err = json.MarshalIndent(v, "", "  ")
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return errdefs.Wrap(errdefs.Internal, err, "encode output")
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// flagSet is a FlagSet whose usage is printed only for -h.
type flagSet struct {
	*flag.FlagSet
	usage func()
	// name and line are the command and its usage line, for errors.
	name, line string
}

// newFlags returns a flagSet whose errors are returned, not printed.
func newFlags(c *cmdContext, name, usageLine string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package prints parse errors itself; we report them as one
	// "invalid" line instead, and print the usage only for -h.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, usage: func() {
		fmt.Fprintf(c.stderr, "Usage: skillbox %s %s\n\nFlags:\n", name, usageLine)
		fs.SetOutput(c.stderr)
		fs.PrintDefaults()
	}, name: name, line: usageLine}
}

// parse parses flags anywhere among args (Go's flag package stops at the
// first positional argument) and returns the positional arguments.
func parse(fs *flagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.usage()
				return nil, err
			}
			return nil, errdefs.New(errdefs.Invalid, "%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// jsonOnly parses the flags of a command that takes only --json and no
// arguments, and says whether --json was given.
func (c *cmdContext) jsonOnly(name string, args []string) (bool, error) {
	fs := newFlags(c, name, "[--json]")
	jsonOut := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return false, err
	}
	return *jsonOut, wantArgs(pos, 0, "no arguments")
}

// wantArgs checks the number of positional arguments.
func wantArgs(pos []string, n int, what string) error {
	switch {
	case len(pos) == n:
		return nil
	case len(pos) == 0:
		return errdefs.New(errdefs.Invalid, "want %s, got none", what)
	default:
		return errdefs.New(errdefs.Invalid, "want %s, got %d: %s", what, len(pos), strings.Join(pos, " "))
	}
}

// wantArgs is wantArgs followed by the command's usage line, for the
// commands whose arguments a newcomer is most likely to leave out.
func (fs *flagSet) wantArgs(pos []string, n int, what string) error {
	if err := wantArgs(pos, n, what); err != nil {
		return errdefs.New(errdefs.Invalid, "%v (usage: skillbox %s %s; 'skillbox %s -h' lists the flags)", err, fs.name, fs.line, fs.name)
	}
	return nil
}

// resolveFlags checks --egress-resolve values (HOST=IP) when the flags are
// parsed, so that a typo fails at once rather than on the first call.
func resolveFlags(vals []string) ([]string, error) {
	for _, v := range vals {
		if _, _, err := policy.ParseResolve(v); err != nil {
			return nil, errdefs.New(errdefs.Invalid, "--egress-resolve %q: %v", v, err)
		}
	}
	return slices.Clone(vals), nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
