package sandboxtest

// Cross-call attacks (testdata/attacks/state): call 1 plants, call 2 of the
// same skill, with other params, looks. The checks here are shared by the
// sandbox suite (one opened sandbox) and by the tests that run the same
// skills through a long-lived skillbox.Runtime and through `serve`.

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
)

// StateAttack is one cross-call attack of the corpus.
type StateAttack struct {
	// Name is the corpus id, "state/<skill>".
	Name string
	// Plants are call 1's params (phase and secret are added); each is
	// followed by its own call 2.
	Plants []map[string]any
	// Wait is how long call 2 waits for what call 1 left running.
	Wait time.Duration
	// Timeout, when set, is the call timeout the attack needs (the suite's
	// default is short; a Runtime's is 30s).
	Timeout time.Duration
}

// StateAttacks lists every state/* attack of the corpus with its plants.
func StateAttacks() []StateAttack {
	one := []map[string]any{{}}
	return []StateAttack{
		{Name: "state/persist-between-calls", Plants: []map[string]any{{"delay": 0.2}}, Wait: 500 * time.Millisecond},
		{Name: "state/import-mmap", Plants: one},
		{Name: "state/harness-override", Plants: one},
		{Name: "state/sysv-ipc", Plants: one},
		{Name: "state/deep-scratch", Plants: deepScratchPlants(), Timeout: 30 * time.Second},
		{Name: "state/leftovers", Plants: one},
		{Name: "state/parent-attrs", Plants: one},
	}
}

// deepScratchPlants: past PATH_MAX; deep enough that recursive removal in
// Python raises RecursionError (5x the default limit; each level costs
// more than the last in the jail, so 20000 would take about 30s); and
// unreadable/unnameable entries.
func deepScratchPlants() []map[string]any {
	return []map[string]any{{"variant": "long"}, {"variant": "deep", "levels": 5000}, {"variant": "odd"}}
}

// FindStateAttack returns the attack named name (a corpus id); it panics on an
// unknown name, a mistake in the test itself.
func FindStateAttack(name string) StateAttack {
	for _, a := range StateAttacks() {
		if a.Name == name {
			return a
		}
	}
	panic("sandboxtest: no state attack " + name)
}

// CallFunc runs one call of corpus skill id with params wherever the test
// keeps its long-lived state (a Runtime, a server) and returns the value.
type CallFunc func(t *testing.T, id string, params map[string]any) (json.RawMessage, error)

// RunCrossCall runs each attack's plants and looks through call, one
// subtest per attack. emulated is set for a backend whose OS is emulated
// (Pyodide): fork is refused there (ENOSYS), which the skills report and
// persist-between-calls raises; what call 1 planted before must still not
// reach call 2.
func RunCrossCall(t *testing.T, call CallFunc, attacks []StateAttack, emulated bool) {
	for _, a := range attacks {
		t.Run(a.Name, func(t *testing.T) { runStateAttack(t, call, a, emulated) })
	}
}

// runStateAttack runs a's plants, each followed by a look, through call
// and fails with NOT CONTAINED for anything a look got of its plant. A
// look that fails is fatal: after any plant the skill's next call must
// work (the zygote survives, or a fresh one replaces it).
func runStateAttack(t *testing.T, call CallFunc, a StateAttack, emulated bool) {
	t.Helper()
	for i, plant := range a.Plants {
		secret := "SBXSECRET-" + strings.ToUpper(randHex(8))
		nonce := randHex(6)
		pv, err := call(t, a.Name, plantParams(plant, secret, nonce))
		checkPlant(t, a.Name, i, pv, err, emulated)
		time.Sleep(a.Wait)
		lv, err := call(t, a.Name, map[string]any{"phase": 2, "nonce": nonce})
		if err != nil {
			t.Fatalf("%s: call 2 after plant %v failed (the skill's next call must work): %v", a.Name, plant, err)
		}
		for _, leak := range CrossCallLeaks(pv, lv, secret) {
			t.Errorf("NOT CONTAINED: %s (plant %v): %s", a.Name, plant, leak)
		}
	}
}

// plantParams is call 1's params: the plant's own, phase 1, a fresh
// secret, and the nonce persist-between-calls names its files with.
func plantParams(plant map[string]any, secret, nonce string) map[string]any {
	p := maps.Clone(plant)
	p["phase"], p["secret"], p["nonce"] = 1, secret, nonce
	return p
}

// checkPlant logs what call 1 did. A call 1 that failed is an error, but
// not a fatal one: call 2 still shows whether anything got through.
func checkPlant(t *testing.T, name string, i int, value json.RawMessage, err error, emulated bool) {
	t.Helper()
	switch {
	case err != nil && emulated && forkRefused(err):
		t.Logf("%s plant %d: fork refused by the emulation after planting: %v", name, i, err)
	case err != nil:
		t.Errorf("%s plant %d: call 1 failed: %v", name, i, err)
	default:
		t.Logf("%s plant %d: %s", name, i, PlantSummary(value))
	}
}

// forkRefused is an emulated OS's refusal of fork (ENOSYS) raised by the
// skill.
func forkRefused(err error) bool {
	var se *errdefs.SkillError
	return errors.As(err, &se) && strings.Contains(err.Error(), "Function not implemented")
}

// crossReport is the part of a state attack's report the checks read.
type crossReport struct {
	Probes map[string]probeResult `json:"probes"`
	Info   struct {
		Seen      map[string]json.RawMessage `json:"seen"`
		ImportID  string                     `json:"import_id"`
		ImportPID int                        `json:"import_pid"`
		PID       int                        `json:"pid"`
		Patched   []string                   `json:"patched"`
		Capped    string                     `json:"levels_capped"`
	} `json:"info"`
}

// CrossCallLeaks lists what call 2 (look) got of call 1 (plant): every
// entry of its info.seen, the secret anywhere in it, and one import of the
// skill serving both calls (single use means that no code the skill
// controls runs in a process that serves another call). Nothing means
// contained. A look without info.seen is reported too: it proves nothing.
func CrossCallLeaks(plant, look json.RawMessage, secret string) []string {
	var l, p crossReport
	if err := json.Unmarshal(look, &l); err != nil || l.Info.Seen == nil {
		return []string{fmt.Sprintf("call 2 returned no report of what it saw (%v): %.300s", err, look)}
	}
	json.Unmarshal(plant, &p)
	var leaks []string
	for _, k := range slices.Sorted(maps.Keys(l.Info.Seen)) {
		leaks = append(leaks, fmt.Sprintf("call 2 saw %s = %.300s", k, l.Info.Seen[k]))
	}
	if secret != "" && strings.Contains(string(look), secret) && len(leaks) == 0 {
		leaks = append(leaks, "call 2's result holds call 1's secret")
	}
	if p.Info.ImportID != "" && p.Info.ImportID == l.Info.ImportID {
		leaks = append(leaks, fmt.Sprintf("both calls ran on one import of the skill (import id %s, made by pid %d; calls in pids %d and %d)",
			l.Info.ImportID, l.Info.ImportPID, p.Info.PID, l.Info.PID))
	}
	return leaks
}

// PlantSummary is one line on what call 1 did: its probes that worked,
// those refused (with errno), and what it patched.
func PlantSummary(plant json.RawMessage) string {
	var p crossReport
	if err := json.Unmarshal(plant, &p); err != nil {
		return fmt.Sprintf("no report (%v): %.200s", err, plant)
	}
	var ok, refused []string
	for _, n := range slices.Sorted(maps.Keys(p.Probes)) {
		if pr := p.Probes[n]; pr.OK {
			ok = append(ok, n)
		} else {
			refused = append(refused, n+" ("+pr.Errno+")")
		}
	}
	s := fmt.Sprintf("planted %v; refused %v", ok, refused)
	if len(p.Info.Patched) > 0 {
		s += fmt.Sprintf("; patched %v", p.Info.Patched)
	}
	if p.Info.Capped != "" {
		s += "; levels " + p.Info.Capped
	}
	return s
}
