//go:build linux

package gvisor_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/image/imagetest"
	"github.com/skillbox-dev/skillbox/sandbox"
	"github.com/skillbox-dev/skillbox/sandbox/gvisor"
)

// benchBundle writes the benchmarks' skill.
func benchBundle(t testing.TB) string { return bundle(t, benchBody) }

// bundle writes a skill whose execute runs body (indented 8 spaces).
func bundle(t testing.TB, body string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "skill")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := "import os, sys\nfrom skillware.core.base_skill import BaseSkill\n\nclass S(BaseSkill):\n    def execute(self, params):\n" + body + "\n"
	if err := os.WriteFile(filepath.Join(dir, "skill.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func callValue(t *testing.T, sb sandbox.Sandbox) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := sb.Call(ctx, sandbox.Request{Params: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(res.Value, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// listTree lists every path under dir, relative to it.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestContainerImage runs a skill with execution: container under gVisor:
// the root is the image's (its python, its marker, nothing of the host's
// /), read-only, and the unpacked image in the cache is left exactly as
// it was (runsc makes its mount points in the sandbox's own folder).
func TestContainerImage(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(t.TempDir(), "images")
	d := gvisor.New(gvisor.Options{TempDir: tmp, ImageCache: cache})
	if c := d.Probe(context.Background()); !c.Available {
		t.Skipf("runsc: %s", c.Reason)
	}
	canary := filepath.Join(t.TempDir(), "host-canary")
	if err := os.WriteFile(canary, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := bundle(t, `        try:
            open("/usr/bin/planted", "w")
            write = "written"
        except OSError as e:
            write = type(e).__name__
        seen = {p: os.path.exists(p) for p in ["/image-marker", "/work", "/root", "/home", "/etc/passwd", `+"\""+canary+"\""+`, "/skill/skill.py"]}
        return {"executable": sys.executable, "uid": os.getuid(), "marker": open("/image-marker").read(),
                "seen": seen, "write": write, "image_var": os.environ.get("IMAGE_VAR"), "preload": os.environ.get("LD_PRELOAD")}`)
	imagetest.PythonImage(t, filepath.Join(dir, "image"))
	sb, err := d.Open(context.Background(), sandbox.Spec{SkillID: "t/image", BundleDir: dir, Container: &sandbox.Container{Image: "oci:image"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		v := callValue(t, sb)
		if v["executable"] != "/usr/bin/python3" || v["marker"] != imagetest.Marker {
			t.Errorf("call %d: not the image's python or root: %v, marker %q", i, v["executable"], v["marker"])
		}
		for p, there := range v["seen"].(map[string]any) {
			if want := p == "/image-marker" || p == "/skill/skill.py"; there != want {
				t.Errorf("call %d: os.path.exists(%s) = %v under gVisor, want %v", i, p, there, want)
			}
		}
		if v["write"] == "written" {
			t.Errorf("call %d: the skill wrote into the image's /usr/bin", i)
		}
		if v["uid"] == float64(0) {
			t.Errorf("call %d: the skill runs as root", i)
		}
		if v["image_var"] != "from-the-image" || v["preload"] != nil {
			t.Errorf("call %d: image env %v, LD_PRELOAD %v: want the image's own variable and no poison", i, v["image_var"], v["preload"])
		}
	}
	// runsc made no mount point in the unpacked image (the cache's one
	// folder holding image-marker).
	var rootfs string
	filepath.WalkDir(cache, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.Name() == "image-marker" {
			rootfs = filepath.Dir(p)
		}
		return nil
	})
	if rootfs == "" {
		t.Fatal("no unpacked image in the cache")
	}
	for _, own := range []string{"skill", "scratch", "proc", "dev", "tmp"} {
		if _, err := os.Lstat(filepath.Join(rootfs, own)); err == nil {
			t.Errorf("the unpacked image in the cache gained /%s", own)
		}
	}
	// The image ships one file under /sys (imagetest.ImageSys); its /sys
	// holds nothing else.
	if got := listTree(t, filepath.Join(rootfs, "sys")); !slices.Equal(got, []string{".", "kernel", "kernel/mm",
		"kernel/mm/transparent_hugepage", "kernel/mm/transparent_hugepage/enabled"}) {
		t.Errorf("the unpacked image's /sys holds %v, not only what the image shipped", got)
	}
	if err := sb.Close(); err != nil {
		t.Fatal(err)
	}
	if left := listTree(t, tmp); len(left) != 1 {
		t.Errorf("the sandbox's folders outlive Close: %v", left)
	}
}

// TestNeverAuto: gvisor registers with strength 0, so auto never chooses
// it; --backend gvisor does.
func TestNeverAuto(t *testing.T) {
	var found bool
	for _, r := range sandbox.List() {
		if r.Name == gvisor.Name {
			found = true
			if r.Strength != 0 {
				t.Errorf("gvisor strength %d: auto could choose it", r.Strength)
			}
		}
	}
	if !found {
		t.Fatal("gvisor is not registered")
	}
	if d, err := sandbox.Choose(context.Background(), sandbox.Auto, true); err == nil && d.Name() == gvisor.Name {
		t.Error("auto chose gvisor")
	}
	d, err := sandbox.Choose(context.Background(), gvisor.Name, false)
	if err != nil || d.Name() != gvisor.Name {
		t.Errorf("--backend gvisor: %v, %v", d, err)
	}
}

// TestKVMProbeBounded: the KVM platform is used only after a trial
// sandbox ran on it within gvisor.KVMProbeTimeout; on a host where runsc
// hangs on KVM, the probe ends (the trial killed) and says why.
func TestKVMProbeBounded(t *testing.T) {
	driver(t) // runsc runs here at all
	d := gvisor.New(gvisor.Options{Platform: gvisor.PlatformKVM, TempDir: t.TempDir()})
	start := time.Now()
	c := d.Probe(context.Background())
	el := time.Since(start)
	// A guard against a hang, not a speed check: the trial's bound plus
	// runsc delete's and a loaded machine's slack.
	if el > gvisor.KVMProbeTimeout+time.Minute {
		t.Fatalf("the KVM probe took %v", el)
	}
	var platform sandbox.Layer
	for _, l := range c.Layers {
		if l.Name == gvisor.LayerPlatform {
			platform = l
		}
	}
	if !strings.HasPrefix(platform.Detail, "kvm: ") {
		t.Errorf("platform layer %+v does not name kvm", platform)
	}
	if !platform.Available && (c.Available || !strings.Contains(c.Reason, gvisor.LayerPlatform)) {
		t.Errorf("KVM trial failed (%s) but the probe says available=%v, reason %q", platform.Detail, c.Available, c.Reason)
	}
	t.Logf("kvm: available=%v (%s) after %v", platform.Available, platform.Detail, el)
}

// TestSettings: the policy file's platform setting reaches the driver;
// anything else is invalid.
func TestSettings(t *testing.T) {
	var reg sandbox.Registration
	for _, r := range sandbox.List() {
		if r.Name == gvisor.Name {
			reg = r
		}
	}
	d, err := reg.New(sandbox.Config{Backend: gvisor.Name, Settings: []sandbox.Setting{{Key: "platform", Value: "kvm", Kind: "str"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.(sandbox.Configurable).Config()["platform"]; got != "kvm" {
		t.Errorf("platform = %v", got)
	}
	for _, s := range []sandbox.Setting{{Key: "platform", Value: "systrap", Kind: "str"}, {Key: "network", Value: "host", Kind: "str"}} {
		if _, err := reg.New(sandbox.Config{Backend: gvisor.Name, Settings: []sandbox.Setting{s}}); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("setting %s=%s: %v, want invalid", s.Key, s.Value, err)
		}
	}
}
