package linux

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/backend"
	"github.com/skillbox-dev/skillbox/internal/cgroup"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/pyinterp"
	"github.com/skillbox-dev/skillbox/internal/worker"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// What the three ways of running a call (zygote, cold, session) share; the
// protocol itself is worker's.

// initMsg is the harness's init message for mode.
func (b *box) initMsg(mode string) worker.Init {
	in := worker.Init{Type: worker.TypeInit, Bundle: jail.SkillDir, Manifest: b.spec.Manifest, Mode: mode,
		Requirements: b.reqNames}
	if b.container == nil {
		in.Executable = b.interp.Environment
	}
	if mode == worker.ModeZygote {
		in.Scratch = jail.ScratchDir
		in.Warm = b.spec.Warm
		if b.container != nil {
			// Only a trusted image gets a zygote (Open); its sys.path is
			// the interpreter's own.
			in.TrustedEnv = b.container.Trusted(b.spec)
		} else {
			in.TrustedEnv = b.trustedEnv()
			in.SitePaths = b.interp.Paths
		}
	}
	return in
}

// trustedEnv says whether trusted_environments lists the environment the
// jail runs: a skill's own environment by its digest only (what it holds:
// neither its key nor its interpreter's path, which name only what it was
// built from and stay the same when a rebuild installs a new release),
// else the interpreter's environment key.
func (b *box) trustedEnv() bool {
	if env := b.spec.Environment; env != nil {
		return env.Digest != "" && slices.Contains(b.spec.TrustedEnvironments, env.Digest)
	}
	return slices.Contains(b.spec.TrustedEnvironments, environmentKey(b.interp))
}

// environmentKey names the interpreter environment a jail runs for the
// policy file's trusted_environments: "python:" and the interpreter the
// jail runs (a virtual environment's own python for a venv; for a
// per-skill environment, which starts from its base, its bin/python).
func environmentKey(in *pyinterp.Interpreter) string {
	if in.Environment != "" {
		return "python:" + in.Environment
	}
	return "python:" + in.Command
}

// initWorker sends init and checks the skill's requirements against what
// the interpreter reported. A zygote that does not import the skill
// reports none: its first child does (checkReady).
func (b *box) initWorker(ctx context.Context, p *worker.Process, in worker.Init) error {
	rep, err := p.Init(ctx, in)
	if in.Mode != worker.ModeZygote || b.spec.Warm {
		err = b.checkReady(rep, err)
	}
	if err != nil && backend.CallTimedOut(ctx, err) {
		return b.judge.TimeoutErr(ctx)
	}
	return err
}

// checkReady turns a worker's ready answer into the call's error: unmet
// requirements first (they explain an import error better than the import
// error does), then the load error itself.
func (b *box) checkReady(rep *worker.Reply, err error) error {
	if pk, ok := worker.PackagesOf(rep, err); ok {
		if rerr := backend.CheckRequirements(b.spec.Requirements, pk, b.interpName(), ""); rerr != nil {
			return rerr
		}
	}
	return err
}

// startLimit is the error for a jail that failed before the skill was
// ready (err): the limit it ran into if its cgroup, fresh when the jail
// started, counted one (the jail must not be destroyed yet), or err.
func (b *box) startLimit(cg *cgroup.Group, err error) error {
	if errors.Is(err, cgroup.ErrOverLimit) {
		return &errdefs.LimitError{Resource: "memory", Limit: skill.FormatSize(b.lim.Memory),
			Detail: "the jail's init stage already used more before Python started"}
	}
	if lerr := b.judge.LimitHit(cg, cgroup.Counts{}); lerr != nil {
		var le *errdefs.LimitError
		if errors.As(lerr, &le) && le.Resource == "memory" {
			le.Detail = "the jail ran out of memory before the skill was ready (Python, the harness and the skill's imports need more)"
		}
		return lerr
	}
	return err
}

// result is a successful call's Result; maxRSS is the jail's peak memory
// during the call (0: unknown).
func result(value json.RawMessage, stdout, stderr *worker.Capture, maxRSS int64) *sandbox.Result {
	res := backend.NewResult(value, stdout, stderr)
	res.Usage.MaxRSS = maxRSS
	return res
}

// interpName names the interpreter for messages.
func (b *box) interpName() string {
	if b.container != nil {
		return b.container.Interpreter()
	}
	return b.interp.String()
}
