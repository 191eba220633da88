// Package audit writes skillbox's append-only audit log: one JSON object per
// line, one record per call and per policy decision, and one per decision
// of a sandbox's egress proxy (EventEgress).
//
// Records never contain call parameters or results, only a hash of the
// parameters, so the log can be kept and shared without leaking what users
// asked their agents to do. A failed call's error is kept except where it
// may quote the parameters: a schema violation and a skill's exception are
// recorded by kind and exception type only (the Runtime writes them so).
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/skillbox-dev/skillbox/internal/userdir"
)

// Events in Record.Event.
const (
	EventCall   = "call"   // a call ran (ok or failed)
	EventDenied = "denied" // policy refused before any code ran

	EventTrust     = "trust"       // an operator trusted a skill (or declined to)
	EventUntrust   = "untrust"     // an operator removed a skill from the trust store
	EventPublisher = "publisher"   // a publisher key was trusted
	EventUnpublish = "unpublisher" // a publisher key was removed
	EventSign      = "sign"        // a skill was signed
	EventVerify    = "verify"      // a skill's signature was checked
	EventLock      = "lock"        // a skill was pinned in a lockfile
	EventImagePin  = "image_pin"   // image pull re-pinned a moved tag for a skill version that first ran on another image
)

// Record is one audit line.
type Record struct {
	Time    time.Time `json:"time"`
	Event   string    `json:"event"`
	Skill   string    `json:"skill"`
	Version string    `json:"version,omitempty"`
	Digest  string    `json:"digest,omitempty"`
	Tier    string    `json:"tier,omitempty"`
	Backend string    `json:"backend,omitempty"`
	// Grants is the effective grant the call ran with.
	Grants *Grants `json:"grants,omitempty"`
	// Warm is set when the call ran warm (the operator's opt-in for this
	// skill, serve --warm or the policy's "warm: true"): calls of this
	// skill may share state that its import created.
	Warm bool `json:"warm,omitempty"`
	// Trust says why an external skill was allowed to run.
	Trust string `json:"trust,omitempty"`
	// Key is a publisher key id (sign, verify, publisher events).
	Key string `json:"key,omitempty"`
	// Detail adds what an event changed (a file path, a diff summary).
	Detail string `json:"detail,omitempty"`
	// ParamsSHA256 is the hex sha256 of the params JSON as received.
	ParamsSHA256 string `json:"params_sha256,omitempty"`
	Outcome      string `json:"outcome"` // "ok" or "error"
	ErrorKind    string `json:"error_kind,omitempty"`
	Error        string `json:"error,omitempty"`
	DurationMS   int64  `json:"duration_ms"`
	MaxRSS       int64  `json:"max_rss,omitempty"`
	CPUTimeMS    int64  `json:"cpu_time_ms,omitempty"`
	// Warnings are notes shown to the caller (weakened layers, shadowing).
	Warnings []string `json:"warnings,omitempty"`
	// Egress is set on egress records (EventEgress).
	Egress *Egress `json:"egress,omitempty"`
}

// Grants is the effective grant recorded for a call.
type Grants struct {
	Env     []string `json:"env,omitempty"` // names only, never values
	Network []string `json:"network,omitempty"`
	Read    []string `json:"read,omitempty"` // host paths granted read-only
	// Timeout is the wall-clock limit the call ran under, the backends'
	// default (30s) when neither the manifest nor the operator set one.
	Timeout string `json:"timeout,omitempty"`
	// Memory is the memory limit asked for; 0 (omitted) means the
	// backend's default, where it enforces one.
	Memory int64 `json:"memory,omitempty"`
	// Secrets names the granted variables bound to hosts (the skill saw
	// placeholders); names only.
	Secrets []string `json:"secrets,omitempty"`
	// Resolve lists the egress name mappings granted, as HOST=IP.
	Resolve []string `json:"resolve,omitempty"`
	// OperatorOnly says the skill's manifest has no permissions block
	// and Network or Env hold grants the operator gave this skill as they
	// are (run's flags, its policy entry), not intersected with a request.
	OperatorOnly bool `json:"operator_only,omitempty"`
}

// HashParams returns the hex sha256 of params.
func HashParams(params []byte) string {
	sum := sha256.Sum256(params)
	return hex.EncodeToString(sum[:])
}

// Log appends records to a writer. It is safe for concurrent use; each record
// is written with a single Write so lines from concurrent calls never mix.
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer
}

// New returns a Log writing to w.
func New(w io.Writer) *Log { return &Log{w: w} }

// Open returns a Log appending to the file at path, creating it (mode 0600)
// and its directory (0700) if needed. A file other users may write (they
// could forge or erase records) or that is not a regular file is refused.
func Open(path string) (*Log, error) {
	if path == "" {
		return nil, fmt.Errorf("audit log: no path (set %s, XDG_STATE_HOME or HOME)", PathEnv)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
		f.Close()
		return nil, fmt.Errorf("audit log: %w", err)
	case !fi.Mode().IsRegular():
		f.Close()
		return nil, fmt.Errorf("audit log %s: not a regular file", path)
	case fi.Mode().Perm()&0o022 != 0:
		f.Close()
		return nil, fmt.Errorf("audit log %s: other users may write it, and so forge or erase records (mode %v); run chmod go-w %s", path, fi.Mode().Perm(), path)
	}
	return &Log{w: f, closer: f}, nil
}

// PathEnv names a variable that, when set to an absolute path, moves the
// audit log there.
const PathEnv = "SKILLBOX_AUDIT_LOG"

// DefaultPath is $SKILLBOX_AUDIT_LOG if it is an absolute path, else
// $XDG_STATE_HOME/skillbox/audit.jsonl, falling back to
// ~/.local/state/skillbox/audit.jsonl, then (no HOME) to the private
// temporary folder of internal/userdir; "" if that cannot be made, which
// Open refuses.
func DefaultPath(getenv func(string) string) string {
	if p := getenv(PathEnv); filepath.IsAbs(p) {
		return p
	}
	dir, err := userdir.State(getenv)
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "audit.jsonl")
}

// Write appends r. A nil Log discards records.
func (l *Log) Write(r Record) error {
	if l == nil {
		return nil
	}
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	r.Error = clip(r.Error)
	r.Warnings = clipWarnings(r.Warnings)
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(line); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

// A record's error and warnings come from what a skill's folder holds (a
// manifest's fields, a build's output): each call writes them, so they are
// bounded, lest one skill's calls fill the log's disk a megabyte at a time.
const (
	// maxText bounds the error and each warning, in bytes.
	maxText = 4 << 10
	// maxWarnings bounds the warnings recorded one by one.
	maxWarnings = 32
)

// clip cuts s to maxText bytes (at a rune), saying how many more there were.
func clip(s string) string {
	if len(s) <= maxText {
		return s
	}
	return strings.ToValidUTF8(s[:maxText], "") + fmt.Sprintf("… [%d more bytes]", len(s)-maxText)
}

// clipWarnings is ws with each warning clipped and at most maxWarnings of
// them, then how many more there were; ws itself is left as it is.
func clipWarnings(ws []string) []string {
	long := len(ws) > maxWarnings
	for _, w := range ws {
		long = long || len(w) > maxText
	}
	if !long {
		return ws
	}
	out := make([]string, 0, maxWarnings+1)
	for i, w := range ws {
		if i == maxWarnings {
			out = append(out, fmt.Sprintf("[%d more warnings not recorded]", len(ws)-i))
			break
		}
		out = append(out, clip(w))
	}
	return out
}

// Close closes the underlying file, if Log opened one.
func (l *Log) Close() error {
	if l == nil || l.closer == nil {
		return nil
	}
	return l.closer.Close()
}
