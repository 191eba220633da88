package backend

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// StartAllowance is how long getting a call's sandbox ready (a jail, an
// interpreter, the skill's import) may take beyond the call's timeout: the
// timeout is the skill's call; the start is bounded by timeout +
// StartAllowance.
const StartAllowance = 15 * time.Second

// CheckLimits refuses limits no call could run under.
func CheckLimits(l sandbox.Limits) error {
	if l.Memory > 0 && l.Memory < sandbox.MinMemory {
		return errdefs.New(errdefs.Invalid, "memory limit of %d bytes is below the floor of %d MiB (sandbox.MinMemory), the least memory a jail needs to start Python", l.Memory, sandbox.MinMemory>>20)
	}
	return nil
}

// CheckRequire returns an errdefs.Unsupported error naming each feature in
// require that c does not enforce, or nil. Drivers call it from Open.
func CheckRequire(c sandbox.Capabilities, driver string, require []sandbox.Feature) error {
	var missing []string
	for _, f := range require {
		if !c.Has(f) {
			missing = append(missing, string(f))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return errdefs.New(errdefs.Unsupported, "backend %q cannot enforce %s", driver, strings.Join(missing, ", "))
}

// Captured is a call's captured stdout or stderr (worker.Capture is one).
type Captured interface {
	Bytes() []byte
	Truncated() bool
}

// NewResult assembles the Result of a call that returned value, with its
// captured output; backends add what they know of usage.
func NewResult(value json.RawMessage, stdout, stderr Captured) *sandbox.Result {
	return &sandbox.Result{
		Value:           value,
		Stdout:          stdout.Bytes(),
		Stderr:          stderr.Bytes(),
		StdoutTruncated: stdout.Truncated(),
		StderrTruncated: stderr.Truncated(),
	}
}

// OutputGrace bounds how long a failed call waits for the rest of what
// the skill printed before it failed: a harness that answered with an
// error exits at once, closing its output; a skill that is still running
// (its call timed out) is not waited for longer.
const OutputGrace = 250 * time.Millisecond

// PrintedBefore is what a skill printed before its call failed, as a
// Result holding only that: all of it once waitOutput (the worker's
// WaitOutput) says its output ended (a single-use harness exits after its
// error reply), or what arrived within OutputGrace (a skill still running
// when its call timed out).
func PrintedBefore(ctx context.Context, waitOutput func(context.Context) error, stdout, stderr Captured) *sandbox.Result {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), OutputGrace)
	defer cancel()
	waitOutput(wctx)
	return NewResult(nil, stdout, stderr)
}

// SettleOutput waits, within OutputGrace, until a session worker's
// captured output holds what the skill printed before the worker's last
// reply (settle is the worker's SettleOutput): a session's output never
// ends, and without this, output still on its way would show in the next
// call's result, or nowhere.
func SettleOutput(ctx context.Context, settle func(context.Context) error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), OutputGrace)
	defer cancel()
	settle(wctx)
}

// LoadFailed returns err, a worker's failure before its call (the skill's
// import failed, or the worker died or timed out starting), carrying what
// the skill printed until then (errdefs.Output), waited for as
// PrintedBefore does: the caller has killed the worker or seen it exit.
// There is no Result to hold it: the failure may be Open's.
func LoadFailed(ctx context.Context, err error, waitOutput func(context.Context) error, stdout, stderr Captured) error {
	r := PrintedBefore(ctx, waitOutput, stdout, stderr)
	return errdefs.WithOutput(err, r.Stdout, r.Stderr)
}

// TimeoutError names the limit l.Timeout when the call's deadline (ctx)
// caused err, a timeout error without a cause backends can name; other
// errors pass through unchanged. The message is [TimedOut]'s.
func TimeoutError(ctx context.Context, l sandbox.Limits, skillID string, err error) error {
	if errdefs.KindOf(err) == errdefs.Timeout && PastDeadline(ctx) {
		return errdefs.WithOutputOf(TimedOut(skillID, l.Timeout), err) // a start's: what the import printed
	}
	return err
}

// PastDeadline reports whether ctx's deadline has passed. It can be true
// before ctx.Err() is: the worker's copy of the deadline, set on its
// pipes, may fire before ctx's own timer does.
func PastDeadline(ctx context.Context) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && ctx.Err() == nil && !time.Now().Before(d)
}

// TimedOut is the error of a call of skillID that ran past its timeout:
// one wording for every backend (the conformance suite checks it).
func TimedOut(skillID string, timeout time.Duration) error {
	return errdefs.New(errdefs.Timeout, "call to %s timed out after %v", skillID, timeout)
}

// NoContainer is the error of a backend that cannot run a skill in an
// image: errdefs.Unavailable naming the skill, the image and the backend
// that can, or nil when spec asks for no container.
func NoContainer(backend string, spec sandbox.Spec) error {
	if spec.Container == nil {
		return nil
	}
	what := spec.Container.Image
	if what == "" {
		what = "built from " + spec.Container.Dockerfile
	}
	return errdefs.New(errdefs.Unavailable,
		"backend %s cannot run %s in its container image (%s): it has no image root file system; only the linux and gvisor backends run execution: container skills (--backend linux, or gvisor)",
		backend, spec.SkillID, what)
}

// SetMS fills c's millisecond fields from Site and Imports.
func SetMS(c *sandbox.ImportCost) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	c.SiteMS, c.ImportsMS, c.TotalMS = ms(c.Site), ms(c.Imports), ms(c.Site+c.Imports)
}
