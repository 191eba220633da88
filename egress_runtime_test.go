package skillbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// egressDriver stands in for a backend with an egress proxy: it claims
// every feature, records the Specs it opens, and each call reports one
// egress event through the call's audit sink and returns what the skill
// would see.
type egressDriver struct {
	mu    sync.Mutex
	specs []sandbox.Spec
}

var fakeEgress = &egressDriver{}

func init() {
	sandbox.Register(sandbox.Registration{Name: "test-egress", New: func(sandbox.Config) (sandbox.Driver, error) { return fakeEgress, nil }})
}

func (d *egressDriver) Name() string { return "test-egress" }
func (d *egressDriver) Probe(context.Context) sandbox.Capabilities {
	// Not "available", so that tests looping over real backends skip it;
	// the Runtime opens it when it is named explicitly.
	return sandbox.Capabilities{Available: false, Reason: "test double", Isolating: true, Enforces: sandbox.AllFeatures()}
}
func (d *egressDriver) Open(_ context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	if _, err := jail.EgressConfig(spec, nil); err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.specs = append(d.specs, spec)
	d.mu.Unlock()
	return egressBox{spec}, nil
}

type egressBox struct{ spec sandbox.Spec }

func (b egressBox) Call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	cfg, err := jail.EgressConfig(b.spec, egress.AuditFrom(ctx))
	if err != nil {
		return nil, err
	}
	cfg.Audit(egress.Event{Egress: audit.Egress{Method: "CONNECT", Host: "api.example.com", Port: 443, Decision: egress.DecisionAllow, BytesUp: 5, BytesDown: 7, Secrets: []string{"API_KEY"}}})
	v, _ := json.Marshal(map[string]string{"config": req.Config["API_KEY"], "env": b.spec.Env["API_KEY"]})
	return &sandbox.Result{Value: v}, nil
}
func (egressBox) Close() error { return nil }

const realKey = "real-api-key-0123456789"

func egressRuntime(t *testing.T, log *bytes.Buffer) *skillbox.Runtime {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "test", "net_key")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte(`name: net_key
version: "1"
description: calls one API with a key
permissions:
  network: ["api.example.com:443"]
env_vars:
  API_KEY: {description: key, required: true}
`), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(`from skillware.core.base_skill import BaseSkill
class S(BaseSkill):
    def execute(self, params):
        return {"config": self.credential("API_KEY")}
`), 0o644)
	pol, err := policy.Parse("policy.yaml", []byte("secrets:\n  API_KEY: {hosts: [api.example.com]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := skillbox.New(
		skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}),
		skillbox.WithPolicy(pol),
		skillbox.WithLookupEnv(func(k string) (string, bool) { return realKey, k == "API_KEY" }),
		skillbox.WithAudit(audit.New(log)),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

var egressOpts = skillbox.CallOptions{
	Backend:       "test-egress",
	AllowNet:      []string{"api.example.com:443"},
	AllowEnv:      []string{"API_KEY"},
	EgressResolve: []string{"api.example.com=127.0.0.1"},
}

func TestSecretBindingThroughRuntime(t *testing.T) {
	var log bytes.Buffer
	rt := egressRuntime(t, &log)
	fakeEgress.mu.Lock()
	opened := len(fakeEgress.specs)
	fakeEgress.mu.Unlock()
	var seen []map[string]string
	for range 3 {
		res, err := rt.Call(context.Background(), "test/net_key", nil, egressOpts)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]string
		json.Unmarshal(res.Value, &v)
		seen = append(seen, v)
	}
	fakeEgress.mu.Lock()
	specs := fakeEgress.specs[opened:]
	fakeEgress.mu.Unlock()
	if len(specs) != 1 {
		t.Fatalf("opened %d sandboxes for one grant; want 1 (cached)", len(specs))
	}
	spec := specs[0]
	if len(spec.Secrets) != 1 || spec.Secrets[0].Value != realKey {
		t.Fatalf("Spec.Secrets lacks the value: %v", spec.Secrets)
	}
	ph := spec.Secrets[0].Placeholder
	for i, v := range seen {
		if v["config"] != ph || v["env"] != ph {
			t.Errorf("call %d: skill saw config %q env %q; want the placeholder %q", i, v["config"], v["env"], ph)
		}
	}
	if got := spec.Resolve["api.example.com"]; len(got) != 1 || got[0] != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("Spec.Resolve = %v", spec.Resolve)
	}

	if strings.Contains(log.String(), realKey) {
		t.Fatalf("audit log holds the value:\n%s", log.String())
	}
	recs, _, _ := audit.Read(strings.NewReader(log.String()), audit.Filter{})
	var calls, egressRecs []audit.Record
	for _, r := range recs {
		switch r.Event {
		case audit.EventCall:
			calls = append(calls, r)
		case audit.EventEgress:
			egressRecs = append(egressRecs, r)
		}
	}
	if len(calls) != 3 || len(egressRecs) != 3 {
		t.Fatalf("%d call and %d egress records:\n%s", len(calls), len(egressRecs), log.String())
	}
	c, e := calls[0], egressRecs[0]
	if g := c.Grants; g == nil || strings.Join(g.Secrets, ",") != "API_KEY" || strings.Join(g.Resolve, ",") != "api.example.com=127.0.0.1" {
		t.Errorf("call grants = %+v", c.Grants)
	}
	if e.Skill != "test/net_key" || e.Backend != "test-egress" || e.Digest != c.Digest || e.ParamsSHA256 != c.ParamsSHA256 ||
		e.Egress == nil || e.Egress.Host != "api.example.com" || e.Egress.BytesDown != 7 || strings.Join(e.Egress.Secrets, ",") != "API_KEY" {
		t.Errorf("egress record = %+v", e)
	}
}

func TestProcessRefusesSecretBinding(t *testing.T) {
	var log bytes.Buffer
	rt := egressRuntime(t, &log)
	opts := egressOpts
	opts.Backend = "process"
	_, err := rt.Call(context.Background(), "test/net_key", nil, opts)
	if !errors.Is(err, errdefs.ErrUnsupported) || !strings.Contains(err.Error(), string(sandbox.FeatureSecretBinding)) {
		t.Fatalf("err = %v; want unsupported naming %s", err, sandbox.FeatureSecretBinding)
	}
	if strings.Contains(err.Error(), realKey) || strings.Contains(log.String(), realKey) {
		t.Error("the value appears in the error or the audit log")
	}
}
