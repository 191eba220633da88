package worker

import "encoding/json"

// Message types (the "type" field).
const (
	TypeInit   = "init"
	TypeReady  = "ready"
	TypeCall   = "call"
	TypeResult = "result"
	TypeError  = "error"
	TypeFork   = "fork"
	TypeForked = "forked"
	TypeExited = "exited"
)

// Worker modes for Init.Mode.
const (
	ModeSingle  = "single"
	ModeSession = "session"
	ModeZygote  = "zygote"
)

// Error kinds in ErrorInfo.Kind.
const (
	ErrorKindLoad      = "load"      // importing the skill failed, or no/several BaseSkill classes
	ErrorKindException = "exception" // execute raised
	ErrorKindResult    = "result"    // execute returned something that is not JSON
	ErrorKindHarness   = "harness"   // the harness itself failed (id 0; it exits 70)
	ErrorKindFork      = "fork"      // a zygote could not fork the child for a fork frame
)

// Init is the first frame the host sends.
type Init struct {
	Type         string          `json:"type"`
	Bundle       string          `json:"bundle"`
	Manifest     json.RawMessage `json:"manifest,omitempty"`
	Mode         string          `json:"mode"`
	MaxTraceback int             `json:"max_traceback,omitempty"`
	// Requirements lists distribution names (no specifiers) whose installed
	// versions the ready reply must report in Packages.
	Requirements []string `json:"requirements,omitempty"`
	// Scratch, in zygote mode, is the directory emptied after every call.
	Scratch string `json:"scratch,omitempty"`
	// Warm, in zygote mode, imports the skill in the zygote itself (calls
	// may then share state its import created); otherwise each call's child
	// imports it and the zygote holds only trusted code.
	Warm bool `json:"warm,omitempty"`
	// TrustedEnv, in zygote mode, says the operator trusts the
	// interpreter's environment: the zygote processes site (its .pth files
	// and sitecustomize) and may pre-import the skill's third-party
	// imports. Otherwise only the standard library is pre-imported and site
	// is processed in each call's child.
	TrustedEnv bool `json:"trusted_env,omitempty"`
	// SitePaths, in zygote mode, are the interpreter's sys.path directories
	// as a plain start would have them (site-packages included): where the
	// zygote looks, without running anything, for the standard-library
	// modules the environment's start-up code and packages import.
	SitePaths []string `json:"site_paths,omitempty"`
	// Mark, for a pyodide host (docs/PROTOCOL.md, "Pyodide host mode"), is
	// what the host writes to its fds 1 and 2 first when it gets the init:
	// the Go side records only the output that follows it.
	Mark string `json:"mark,omitempty"`
	// Executable, for a per-skill environment, is its bin/python: the
	// interpreter starts as the environment's base (argv[0] too), so that
	// its start reads nothing of the environment, and the harness makes
	// this sys.executable just before it processes site, whose venv step
	// then finds the environment's pyvenv.cfg as a start from it would.
	Executable string `json:"executable,omitempty"`
	// Rehearse, in single mode, runs the harness's own part of a call once
	// before the ready reply, with a stand-in skill and made-up values (as
	// a zygote's child does): for a worker started before its call (a
	// pre-started jail), whose first call then does not pay it. No code of
	// the skill's runs in the rehearsal.
	Rehearse bool `json:"rehearse,omitempty"`
}

// Call asks the worker to run execute(params).
type Call struct {
	Type   string            `json:"type"`
	ID     uint64            `json:"id"`
	Params json.RawMessage   `json:"params"`
	Config map[string]string `json:"config,omitempty"`
	// NetHint asks the harness to record the destinations the skill tries
	// to reach during the call and return them in Reply.NetAttempts (set
	// when the call's context has WithNetAttempts).
	NetHint bool `json:"net_hint,omitempty"`
}

// Fork asks a zygote to fork a child for call ID (descriptors ride along as
// SCM_RIGHTS).
type Fork struct {
	Type string `json:"type"`
	ID   uint64 `json:"id"`
}

// Reply is any frame the worker sends. Which fields are set depends on Type.
type Reply struct {
	Type string `json:"type"`
	ID   uint64 `json:"id"`
	// ready
	Class  string `json:"class,omitempty"`
	Python string `json:"python,omitempty"`
	// Packages maps each requested requirement name to its installed
	// version: "" when importable but of unknown version, null when missing.
	Packages map[string]*string `json:"packages,omitempty"`
	// Dumpable is false when a zygote made itself non-dumpable.
	Dumpable *bool `json:"dumpable,omitempty"`
	// result
	Result json.RawMessage `json:"result,omitempty"`
	// NetAttempts (result or error of a call with NetHint) lists the
	// destinations the skill tried to reach, [{"host":..,"port":..}]; kept
	// raw so that a malformed list never fails the reply (ParseNetAttempts).
	NetAttempts json.RawMessage `json:"net_attempts,omitempty"`
	// error
	Error *ErrorInfo `json:"error,omitempty"`
	// forked / exited (zygote control)
	PID    int  `json:"pid,omitempty"`
	Code   *int `json:"code,omitempty"`
	Signal int  `json:"signal,omitempty"`
}

// ErrorInfo describes a failure inside the worker.
type ErrorInfo struct {
	Kind      string `json:"kind"`
	Type      string `json:"type"`
	Message   string `json:"message"`
	Traceback string `json:"traceback,omitempty"`
}
