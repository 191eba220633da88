package sandboxtest

import (
	"encoding/json"
	"testing"

	"github.com/skillbox-dev/skillbox/sandbox"
)

// crossCallAttack runs the state attack name (StateAttacks) on one opened
// sandbox: every plant and look goes to the same sandbox, so whatever
// serves more than one of its calls (a zygote, a pool) is what is attacked.
func crossCallAttack(t *testing.T, e *attackEnv, name string) {
	a := FindStateAttack(name)
	opts := e.opts
	if a.Timeout > 0 {
		// The call's own deadline follows, or a slow start would end it.
		opts.Limits.Timeout = a.Timeout
	}
	sb, _ := e.openAttack(t, name, func(s *sandbox.Spec) { s.Limits.Timeout = opts.limits().Timeout })
	call := func(t *testing.T, _ string, params map[string]any) (json.RawMessage, error) {
		res, err, _ := Call(t, sb, opts, e.params(params), nil)
		e.noSecret(t, outcome{res: res, err: err}, e.token)
		return resValue(res), err
	}
	runStateAttack(t, call, a, e.opts.Emulated)
	closeNow(t, sb)
}
