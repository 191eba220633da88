package skillbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox"
	"github.com/skillbox-dev/skillbox/audit"
	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/policy"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/skill"
)

// hangGuard bounds every wait of these tests; it is never a speed target.
const hangGuard = 20 * time.Second

// fakeDriver is a backend the lifecycle tests own: it records every Spec it
// opens and every box it makes, and lets a test hook into Open and Call.
type fakeDriver struct {
	name string

	mu    sync.Mutex
	boxes []*fakeBox
	// open, when set, runs in Open before the box is made; an error fails
	// the Open.
	open func(ctx context.Context, spec sandbox.Spec) error
	// call, when set, runs in each Call.
	call func(ctx context.Context, b *fakeBox) error
}

type fakeBox struct {
	spec sandbox.Spec
	// sink is the egress audit sink of the context Open got.
	sink      func(egress.Event)
	closeOnce sync.Once
	closed    chan struct{}
}

var (
	evictDriver   = &fakeDriver{name: "test-lifecycle-evict"}
	cancelDriver  = &fakeDriver{name: "test-lifecycle-cancel"}
	closeDriver   = &fakeDriver{name: "test-lifecycle-close"}
	egressDriver2 = &fakeDriver{name: "test-lifecycle-egress"}
	specDriver    = &fakeDriver{name: "test-lifecycle-spec"}
	lockDriver    = &fakeDriver{name: "test-lifecycle-lock"}
)

func init() {
	for _, d := range []*fakeDriver{evictDriver, cancelDriver, closeDriver, egressDriver2, specDriver, lockDriver} {
		sandbox.Register(sandbox.Registration{Name: d.name, New: func(sandbox.Config) (sandbox.Driver, error) { return d, nil }})
	}
}

func (d *fakeDriver) Name() string { return d.name }
func (d *fakeDriver) Probe(context.Context) sandbox.Capabilities {
	// Not available, so that tests looping over real backends skip it.
	return sandbox.Capabilities{Available: false, Reason: "test double", Isolating: true, Enforces: sandbox.AllFeatures()}
}

func (d *fakeDriver) Open(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	d.mu.Lock()
	hook := d.open
	d.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, spec); err != nil {
			return nil, err
		}
	}
	b := &fakeBox{spec: spec, sink: egress.AuditFrom(ctx), closed: make(chan struct{})}
	d.mu.Lock()
	d.boxes = append(d.boxes, b)
	d.mu.Unlock()
	return b, nil
}

// opened returns the boxes made so far.
func (d *fakeDriver) opened() []*fakeBox {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.boxes)
}

func (d *fakeDriver) setHooks(open func(context.Context, sandbox.Spec) error, call func(context.Context, *fakeBox) error) {
	d.mu.Lock()
	d.open, d.call = open, call
	d.mu.Unlock()
}

func (b *fakeBox) Call(ctx context.Context, req sandbox.Request) (*sandbox.Result, error) {
	d := driverOf(b)
	d.mu.Lock()
	hook := d.call
	d.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, b); err != nil {
			return nil, err
		}
	}
	v, _ := json.Marshal(map[string]string{"digest": b.spec.Digest})
	// A backend with zygotes that honours Spec.Warm says so.
	return &sandbox.Result{Value: v, Warm: b.spec.Warm}, nil
}

func driverOf(b *fakeBox) *fakeDriver {
	for _, d := range []*fakeDriver{evictDriver, cancelDriver, closeDriver, egressDriver2, specDriver, lockDriver} {
		d.mu.Lock()
		found := slices.Contains(d.boxes, b)
		d.mu.Unlock()
		if found {
			return d
		}
	}
	panic("box of no driver")
}

func (b *fakeBox) Close() error {
	b.closeOnce.Do(func() { close(b.closed) })
	return nil
}

func (b *fakeBox) isClosed() bool {
	select {
	case <-b.closed:
		return true
	default:
		return false
	}
}

// lifecycleRuntime is a Runtime over one project skill, test/life, whose
// folder it returns.
func lifecycleRuntime(t *testing.T, opts ...skillbox.Option) (*skillbox.Runtime, string) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "test", "life")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: life\nversion: \"1\"\ndescription: d\nparameters: {type: object, properties: {n: {type: integer}}}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte("from skillware.core.base_skill import BaseSkill\nclass S(BaseSkill):\n    def execute(self, params):\n        return {}\n"), 0o644)
	opts = append([]skillbox.Option{skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}), skillbox.WithCacheDir(t.TempDir())}, opts...)
	rt, err := skillbox.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt, dir
}

// eventually waits until cond holds, failing the test after hangGuard.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after %v", what, hangGuard)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func digestOf(t *testing.T, res *skillbox.Result, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Digest string }
	json.Unmarshal(res.Value, &v)
	if v.Digest == "" || v.Digest != res.Skill.Digest {
		t.Fatalf("ran digest %q, result names %q", v.Digest, res.Skill.Digest)
	}
	return v.Digest
}

// An edit of a skill's folder evicts the sandbox and validator of its old
// digest within a few watch intervals, with no further call; the old
// sandbox is closed only once the call using it has ended; the next call
// gets a sandbox for the new digest, which the watcher leaves alone.
func TestEditedSkillEvictsOldSandbox(t *testing.T) {
	d := evictDriver
	rt, dir := lifecycleRuntime(t)
	opts := skillbox.CallOptions{Backend: d.name}
	inCall, hold := make(chan struct{}), make(chan struct{})
	var once sync.Once
	d.setHooks(nil, func(ctx context.Context, b *fakeBox) error {
		first := false
		once.Do(func() { first = true })
		if first {
			close(inCall)
			<-hold
		}
		return nil
	})
	t.Cleanup(func() { d.setHooks(nil, nil) })
	base := len(d.opened())

	type out struct {
		res *skillbox.Result
		err error
	}
	first := make(chan out, 1)
	go func() {
		res, err := rt.Call(context.Background(), "test/life", json.RawMessage(`{"n":1}`), opts)
		first <- out{res, err}
	}()
	select {
	case <-inCall:
	case <-time.After(hangGuard):
		t.Fatal("the first call never reached its sandbox")
	}
	boxes := d.opened()[base:]
	if len(boxes) != 1 {
		t.Fatalf("%d sandboxes opened for one call", len(boxes))
	}
	old := boxes[0]
	oldDigest := old.spec.Digest
	if sbs, vs := skillbox.CachedDigests(rt); !slices.Contains(sbs, oldDigest) || !slices.Contains(vs, oldDigest) {
		t.Fatalf("cached sandboxes %v, validators %v; want %s in both", sbs, vs, oldDigest)
	}

	if err := os.WriteFile(filepath.Join(dir, "skill.py"), []byte("from skillware.core.base_skill import BaseSkill\nclass S(BaseSkill):\n    def execute(self, params):\n        return {'edited': True}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "evicted", func() bool {
		sbs, vs := skillbox.CachedDigests(rt)
		return !slices.Contains(sbs, oldDigest) && !slices.Contains(vs, oldDigest)
	})
	if old.isClosed() {
		t.Fatal("the old digest's sandbox was closed while a call used it")
	}
	close(hold)
	if o := <-first; digestOf(t, o.res, o.err) != oldDigest {
		t.Errorf("the call in flight ran another digest than its own")
	}
	eventually(t, "closed once its call ended", old.isClosed)

	res, err := rt.Call(context.Background(), "test/life", nil, opts)
	newDigest := digestOf(t, res, err)
	if newDigest == oldDigest {
		t.Fatal("the edit did not change the digest")
	}
	boxes = d.opened()[base:]
	if len(boxes) != 2 || boxes[1].spec.Digest != newDigest {
		t.Fatalf("want a second sandbox for %s, have %d", newDigest, len(boxes))
	}
	// The current digest's sandbox stays through a few more checks.
	time.Sleep(3 * skillbox.WatchInterval)
	if boxes[1].isClosed() {
		t.Error("the current digest's sandbox was closed")
	}
	if sbs, _ := skillbox.CachedDigests(rt); !slices.Contains(sbs, newDigest) {
		t.Errorf("the current digest's sandbox was evicted: %v", sbs)
	}
	// Removing the skill evicts everything of it.
	os.RemoveAll(dir)
	eventually(t, "closed after the folder went", boxes[1].isClosed)
}

// The first of two callers waiting for a sandbox to open cancels: it gets
// canceled at once, the opening goes on, and the second caller gets the
// same sandbox (one Open in all).
func TestFirstCallerCancelDoesNotFailOthers(t *testing.T) {
	d := cancelDriver
	rt, _ := lifecycleRuntime(t)
	opts := skillbox.CallOptions{Backend: d.name}
	entered, release := make(chan struct{}, 4), make(chan struct{})
	opens := 0
	var mu sync.Mutex
	d.setHooks(func(ctx context.Context, spec sandbox.Spec) error {
		mu.Lock()
		opens++
		mu.Unlock()
		entered <- struct{}{}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil)
	t.Cleanup(func() { d.setHooks(nil, nil) })

	ctx1, cancel1 := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := rt.Call(ctx1, "test/life", nil, opts)
		errc <- err
	}()
	select {
	case <-entered:
	case <-time.After(hangGuard):
		t.Fatal("Open never started")
	}
	cancel1()
	select {
	case err := <-errc:
		if !errors.Is(err, errdefs.ErrCanceled) || errdefs.KindOf(err) != errdefs.Canceled {
			t.Errorf("cancelled first caller: kind %q, err %v; want canceled", errdefs.KindOf(err), err)
		}
	case <-time.After(hangGuard):
		t.Fatal("the cancelled caller kept waiting for the opening")
	}
	second := make(chan error, 1)
	go func() {
		_, err := rt.Call(context.Background(), "test/life", nil, opts)
		second <- err
	}()
	close(release)
	select {
	case err := <-second:
		if err != nil {
			t.Fatalf("second caller failed: %v", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("second caller hangs")
	}
	mu.Lock()
	defer mu.Unlock()
	if opens != 1 {
		t.Errorf("%d opens; want 1 (the first caller's cancel abandoned the opening)", opens)
	}
}

// Close while a sandbox is opening stops the opening, waits for it, and
// closes the sandbox it returned; the waiting call fails as unavailable,
// and later calls too.
func TestCloseDuringOpen(t *testing.T) {
	d := closeDriver
	rt, _ := lifecycleRuntime(t)
	opts := skillbox.CallOptions{Backend: d.name}
	entered := make(chan struct{}, 1)
	d.setHooks(func(ctx context.Context, spec sandbox.Spec) error {
		entered <- struct{}{}
		// A backend that finishes its Open although cancelled.
		select {
		case <-ctx.Done():
		case <-time.After(hangGuard):
		}
		return nil
	}, nil)
	t.Cleanup(func() { d.setHooks(nil, nil) })
	base := len(d.opened())

	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*hangGuard)
		defer cancel()
		_, err := rt.Call(ctx, "test/life", nil, opts)
		errc <- err
	}()
	select {
	case <-entered:
	case <-time.After(hangGuard):
		t.Fatal("Open never started")
	}
	if err := rt.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	boxes := d.opened()[base:]
	if len(boxes) != 1 || !boxes[0].isClosed() {
		t.Fatalf("after Close: %d sandboxes opened, closed: %v; want the one opening, closed", len(boxes), len(boxes) == 1 && boxes[0].isClosed())
	}
	if err := <-errc; errdefs.KindOf(err) != errdefs.Unavailable || !strings.Contains(err.Error(), "closed") {
		t.Errorf("the waiting call: %v; want unavailable (runtime is closed)", err)
	}
	if _, err := rt.Call(context.Background(), "test/life", nil, opts); errdefs.KindOf(err) != errdefs.Unavailable {
		t.Errorf("a call after Close: %v", err)
	}
	if len(d.opened()) != base+1 {
		t.Error("a call after Close opened a sandbox")
	}
}

// Egress decisions that no call causes — made while the sandbox opens (a
// zygote's start, a warm import) and between calls — reach the audit log,
// attributed to the skill, digest and backend, marked outside_call.
func TestEgressOutsideCallsReachAudit(t *testing.T) {
	d := egressDriver2
	var log bytes.Buffer
	var logMu sync.Mutex
	rt, _ := lifecycleRuntime(t, skillbox.WithAudit(audit.New(lockedWriter{&logMu, &log})))
	opts := skillbox.CallOptions{Backend: d.name}
	d.setHooks(func(ctx context.Context, spec sandbox.Spec) error {
		egress.AuditFrom(ctx)(egress.Event{Egress: audit.Egress{Method: "CONNECT", Host: "import.example", Port: 443, Decision: egress.DecisionDeny, Reason: "not granted"}})
		return nil
	}, func(ctx context.Context, b *fakeBox) error {
		egress.AuditFrom(ctx)(egress.Event{Egress: audit.Egress{Method: "GET", Host: "call.example", Port: 80, Decision: egress.DecisionDeny, Reason: "not granted"}})
		return nil
	})
	t.Cleanup(func() { d.setHooks(nil, nil) })
	base := len(d.opened())
	res, err := rt.Call(context.Background(), "test/life", json.RawMessage(`{"n":2}`), opts)
	if err != nil {
		t.Fatal(err)
	}
	boxes := d.opened()[base:]
	if len(boxes) != 1 {
		t.Fatalf("%d sandboxes", len(boxes))
	}
	// Between calls: the sandbox reports through the sink Open got.
	boxes[0].sink(egress.Event{Egress: audit.Egress{Method: "CONNECT", Host: "idle.example", Port: 443, Decision: egress.DecisionDeny, Reason: "not granted"}})

	logMu.Lock()
	recs, _, _ := audit.Read(strings.NewReader(log.String()), audit.Filter{})
	logMu.Unlock()
	byHost := map[string]audit.Record{}
	var call audit.Record
	for _, r := range recs {
		if r.Event == audit.EventEgress {
			byHost[r.Egress.Host] = r
		}
		if r.Event == audit.EventCall {
			call = r
		}
	}
	for _, host := range []string{"import.example", "idle.example"} {
		r, ok := byHost[host]
		if !ok {
			t.Errorf("no audit record of the decision for %s:\n%s", host, log.String())
			continue
		}
		if r.Skill != "test/life" || r.Digest != res.Skill.Digest || r.Tier != "project" || r.Backend != d.name || r.ParamsSHA256 != "" || !r.Egress.OutsideCall {
			t.Errorf("%s: record %+v egress %+v; want the skill's, outside_call, no params hash", host, r, r.Egress)
		}
	}
	if r, ok := byHost["call.example"]; !ok || r.ParamsSHA256 != call.ParamsSHA256 || r.ParamsSHA256 == "" || r.Egress.OutsideCall {
		t.Errorf("the call's own decision: %+v; want the call's params hash %q", r, call.ParamsSHA256)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// A cancelled call is canceled (errdefs, audit), whatever error the killed
// worker left: here an internal one.
func TestCancelledCallIsCanceled(t *testing.T) {
	d := cancelDriver
	var log bytes.Buffer
	var logMu sync.Mutex
	rt, _ := lifecycleRuntime(t, skillbox.WithAudit(audit.New(lockedWriter{&logMu, &log})))
	inCall := make(chan struct{}, 1)
	d.setHooks(nil, func(ctx context.Context, b *fakeBox) error {
		inCall <- struct{}{}
		<-ctx.Done()
		return errdefs.New(errdefs.Internal, "worker: read reply: broken pipe")
	})
	t.Cleanup(func() { d.setHooks(nil, nil) })
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := rt.Call(ctx, "test/life", nil, skillbox.CallOptions{Backend: d.name})
		errc <- err
	}()
	<-inCall
	cancel()
	err := <-errc
	if errdefs.KindOf(err) != errdefs.Canceled || errdefs.ExitCode(errdefs.KindOf(err)) != 130 {
		t.Fatalf("err = %v (kind %q); want canceled", err, errdefs.KindOf(err))
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(log.String(), `"error_kind":"canceled"`) {
		t.Errorf("audit record:\n%s", log.String())
	}
}

// The same through a real backend: Ctrl-C during a call of a sleeping
// skill on process.
func TestCancelledCallIsCanceledOnProcess(t *testing.T) {
	backendsUnderTest(t)
	root := t.TempDir()
	dir := filepath.Join(root, "test", "sleeps")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: sleeps\nversion: \"1\"\ndescription: d\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte("import time\nfrom skillware.core.base_skill import BaseSkill\nclass S(BaseSkill):\n    def execute(self, params):\n        time.sleep(60)\n        return {}\n"), 0o644)
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}), skillbox.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	start := time.Now()
	_, err = rt.Call(ctx, "test/sleeps", nil, skillbox.CallOptions{Backend: "process"})
	if errdefs.KindOf(err) != errdefs.Canceled {
		t.Fatalf("err = %v (kind %q); want canceled", err, errdefs.KindOf(err))
	}
	if time.Since(start) > hangGuard {
		t.Error("the cancelled call ran on")
	}
}

// Warm is per skill: CallOptions.Warm or the skill's policy entry sets
// Spec.Warm, the Result and the audit record say so; other skills and the
// default are not warm. trusted_environments reaches every Spec.
func TestWarmAndTrustedEnvironmentsReachSpec(t *testing.T) {
	d := specDriver
	var log bytes.Buffer
	var logMu sync.Mutex
	pol, err := policy.Parse("policy.yaml", []byte("trusted_environments: [\"python:/opt/python/bin/python3\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := lifecycleRuntime(t, skillbox.WithAudit(audit.New(lockedWriter{&logMu, &log})), skillbox.WithPolicy(pol))
	base := len(d.opened())
	res, err := rt.Call(context.Background(), "test/life", nil, skillbox.CallOptions{Backend: d.name, Warm: []string{"test/other"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Warm {
		t.Error("another skill's --warm made this call warm")
	}
	res, err = rt.Call(context.Background(), "test/life", nil, skillbox.CallOptions{Backend: d.name, Warm: []string{"test/life"}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Warm {
		t.Error("--warm test/life: the result is not warm")
	}
	boxes := d.opened()[base:]
	if len(boxes) != 2 || boxes[0].spec.Warm || !boxes[1].spec.Warm {
		t.Fatalf("specs: %d opened; want a cold then a warm one", len(boxes))
	}
	for _, b := range boxes {
		if strings.Join(b.spec.TrustedEnvironments, ",") != "python:/opt/python/bin/python3" {
			t.Errorf("Spec.TrustedEnvironments = %v", b.spec.TrustedEnvironments)
		}
	}
	logMu.Lock()
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	logMu.Unlock()
	if len(lines) != 2 || strings.Contains(lines[0], `"warm"`) || !strings.Contains(lines[1], `"warm":true`) {
		t.Errorf("audit records:\n%s", strings.Join(lines, "\n"))
	}
}

// On the linux backend: a warm skill's import-time request, made in the
// zygote the sandbox starts when it opens, reaches the audit log as an
// egress record of the skill outside any call; the call's own request is
// the call's (its params hash).
func TestWarmImportEgressAuditedOnLinux(t *testing.T) {
	if !slices.Contains(backendsUnderTest(t), "linux") {
		t.Skip("the linux backend is unavailable here")
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") }))
	defer hs.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(hs.URL, "http://"))
	root := t.TempDir()
	dir := filepath.Join(root, "test", "netimp")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: netimp\nversion: \"1\"\ndescription: d\npermissions:\n  network: [\"api.test:"+port+"\"]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(`import urllib.request
urllib.request.urlopen("http://api.test:`+port+`/import", timeout=10).read()
from skillware.core.base_skill import BaseSkill
class S(BaseSkill):
    def execute(self, params):
        return {"b": urllib.request.urlopen("http://api.test:`+port+`/call", timeout=10).read().decode()}
`), 0o644)
	var log bytes.Buffer
	var mu sync.Mutex
	rt, err := skillbox.New(skillbox.WithRoots(skill.Root{Path: root, Tier: skill.TierProject}), skillbox.WithCacheDir(t.TempDir()),
		skillbox.WithAudit(audit.New(lockedWriter{&mu, &log})))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	res, err := rt.Call(context.Background(), "test/netimp", json.RawMessage(`{}`), skillbox.CallOptions{
		Backend: "linux", AllowNet: []string{"api.test:" + port}, EgressResolve: []string{"api.test=127.0.0.1"}, Warm: []string{"test/netimp"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Warm {
		t.Error("the result is not warm")
	}
	records := func() (outside, inCall []audit.Record, call audit.Record) {
		mu.Lock()
		recs, _, _ := audit.Read(strings.NewReader(log.String()), audit.Filter{})
		mu.Unlock()
		for _, r := range recs {
			switch {
			case r.Event == audit.EventCall:
				call = r
			case r.Event == audit.EventEgress && r.Egress.OutsideCall:
				outside = append(outside, r)
			case r.Event == audit.EventEgress:
				inCall = append(inCall, r)
			}
		}
		return
	}
	// An allowed exchange is reported when it ends: wait for both.
	eventually(t, "both exchanges audited", func() bool {
		o, c, _ := records()
		return len(o) > 0 && len(c) > 0
	})
	outside, inCall, call := records()
	if o := outside[0]; o.Skill != "test/netimp" || o.Digest != res.Skill.Digest || o.Backend != "linux" || o.ParamsSHA256 != "" || o.Egress.Host != "api.test" {
		t.Errorf("import-time record: %+v", o)
	}
	if c := inCall[0]; c.ParamsSHA256 != call.ParamsSHA256 || c.ParamsSHA256 == "" || !call.Warm {
		t.Errorf("the call's record %+v, call %+v", c, call)
	}
}
