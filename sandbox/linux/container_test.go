//go:build linux

package linux

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skillbox-dev/skillbox/errdefs"
	"github.com/skillbox-dev/skillbox/internal/egress"
	"github.com/skillbox-dev/skillbox/internal/image"
	"github.com/skillbox-dev/skillbox/internal/image/imagetest"
	"github.com/skillbox-dev/skillbox/internal/jail"
	"github.com/skillbox-dev/skillbox/internal/jail/stage"
	"github.com/skillbox-dev/skillbox/sandbox"
)

// TestContainer runs skills with execution: container in an image built
// here (no network): the jail's root is the image's, nothing of the
// host's / shows, the image's python runs the skill, its ENV is honoured
// but not its poison, set-user-id bits give nothing, an untrusted image
// gets a fresh interpreter per call and a trusted one a zygote.
func TestContainer(t *testing.T) {
	requireRoot(t)
	if err := jail.Usable(); err != nil {
		t.Skipf("host cannot build jails: %v", err)
	}
	canary := filepath.Join(t.TempDir(), "host-canary")
	if err := os.WriteFile(canary, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := bundle(t, `        import subprocess, stat, ctypes
        st = os.stat("/usr/local/bin/suid-id")
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        walls = {"unshare_user": libc.unshare(0x10000000), "mount": libc.mount(b"none", b"/scratch", b"tmpfs", 0, None)}
        try:
            open("/usr/bin/planted", "w")
            walls["write_image"] = "written"
        except OSError as e:
            walls["write_image"] = type(e).__name__
        seen = {p: os.path.exists(p) for p in ["/image-marker", "/work", "/root", "/home", "/var", "/tmp", "/etc/passwd", `+"\""+canary+"\""+`, "/skill/skill.py"]}
        try:
            thp = open("/sys/kernel/mm/transparent_hugepage/enabled").read()
        except OSError as e:
            thp = "ERR " + type(e).__name__
        return {"executable": sys.executable, "prefix": sys.prefix, "pid": os.getpid(), "uid": os.getuid(), "thp": thp,
                "marker": open("/image-marker").read(), "seen": seen, "env": dict(os.environ), "walls": walls,
                "usr_bin": sorted(os.listdir("/usr/bin")),
                "suid_bit": bool(st.st_mode & stat.S_ISUID),
                "suid_uid": subprocess.run(["/usr/local/bin/suid-id", "-u"], capture_output=True, text=True).stdout.strip()}`)
	imagetest.PythonImage(t, filepath.Join(dir, "image"))
	cache := filepath.Join(t.TempDir(), "images")
	spec := func(c sandbox.Container) sandbox.Spec {
		return sandbox.Spec{BundleDir: dir, Container: &c}
	}

	t.Run("untrusted", func(t *testing.T) {
		sb := openBox(t, Options{ImageCache: cache}, spec(sandbox.Container{Image: "oci:image"}))
		for i := range 2 {
			res, err := call(t, sb, map[string]any{})
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			v := value(t, res)
			if v["executable"] != "/usr/bin/python3" || v["prefix"] != "/usr" || v["marker"] != imagetest.Marker {
				t.Errorf("not the image's python or root: executable %v, prefix %v, marker %q", v["executable"], v["prefix"], v["marker"])
			}
			seen := v["seen"].(map[string]any)
			for p, there := range seen {
				want := p == "/image-marker" || p == "/skill/skill.py"
				if there != want {
					t.Errorf("os.path.exists(%s) = %v in the image's jail, want %v", p, there, want)
				}
			}
			if v["pid"] != float64(1) {
				t.Errorf("call %d ran as pid %v: an untrusted image's call must be pid 1 of a jail of its own, not a zygote's fork", i, v["pid"])
			}
			if uid, _ := v["uid"].(float64); !jail.IsID(int(uid)) || v["suid_uid"] != fmt.Sprint(int(uid)) || v["suid_bit"] != false {
				t.Errorf("uid %v, set-user-id copy ran as %q, bit kept %v: want the jail's id and no bit", v["uid"], v["suid_uid"], v["suid_bit"])
			}
			env := v["env"].(map[string]any)
			if env["IMAGE_VAR"] != "from-the-image" || env["PATH"] != "/usr/local/bin:/usr/bin:/bin" || env["HOME"] != "/scratch" {
				t.Errorf("image ENV not honoured: %v", env)
			}
			// The image's /sys is not shown; the jail's copy of the
			// host's setting is, for malloc (worker.MallocTunables).
			if host, err := os.ReadFile(stage.THPDir + "/enabled"); err == nil && v["thp"] != string(host) {
				t.Errorf("the jail's %s/enabled reads %q, the host's %q (the image's: %q)", stage.THPDir, v["thp"], host, imagetest.ImageSys)
			}
			for _, k := range []string{"LD_PRELOAD", "PYTHONPATH", "PYTHONINSPECT", "GLIBC_TUNABLES"} {
				if _, ok := env[k]; ok {
					t.Errorf("the image's %s reached the skill: %v", k, env)
				}
			}
			if w := v["walls"].(map[string]any); w["unshare_user"] != float64(-1) || w["mount"] != float64(-1) || w["write_image"] == "written" {
				t.Errorf("the walls do not hold in the image's jail: %v", w)
			}
			if !slices.Contains(toStrings(v["usr_bin"]), "python3.11") || slices.Contains(toStrings(v["usr_bin"]), "go") {
				t.Errorf("/usr/bin is not the image's: %v", v["usr_bin"])
			}
		}
	})

	t.Run("trusted image gets a zygote under exec zygote", func(t *testing.T) {
		d, err := imagetest.Digest(filepath.Join(dir, "image"))
		if err != nil {
			t.Fatal(err)
		}
		s := spec(sandbox.Container{Image: "oci:image", Python: "/usr/bin/python3.11"})
		s.TrustedEnvironments = []string{d}
		sb := openBox(t, Options{Exec: ExecZygote, ImageCache: cache}, s)
		res, err := call(t, sb, map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		if v := value(t, res); v["pid"] == float64(1) || v["marker"] != imagetest.Marker {
			t.Errorf("trusted image: pid %v (want a zygote's child), marker %q", v["pid"], v["marker"])
		}
	})

	t.Run("session", func(t *testing.T) {
		s := spec(sandbox.Container{Image: "oci:image"})
		s.Mode = sandbox.ModeSession
		sb := openBox(t, Options{ImageCache: cache}, s)
		var pids []any
		for range 2 {
			res, err := call(t, sb, map[string]any{})
			if err != nil {
				t.Fatal(err)
			}
			v := value(t, res)
			if v["marker"] != imagetest.Marker {
				t.Fatalf("session call not in the image: %v", v)
			}
			pids = append(pids, v["pid"])
		}
		if pids[0] != pids[1] {
			t.Errorf("session calls ran in pids %v: want one worker", pids)
		}
	})

	t.Run("pulled from a loopback registry", func(t *testing.T) {
		img, err := imagetest.FromLayout(filepath.Join(dir, "image"))
		if err != nil {
			t.Fatal(err)
		}
		ref := imagetest.Registry(t) + "/skills/python:3.11"
		digest := imagetest.Push(t, ref, img)
		s := spec(sandbox.Container{Image: ref, Digest: digest})
		sb := openBox(t, Options{ImageCache: filepath.Join(t.TempDir(), "images")}, s)
		res, err := call(t, sb, map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		if v := value(t, res); v["marker"] != imagetest.Marker || v["executable"] != "/usr/bin/python3" {
			t.Errorf("registry image: %v", v)
		}
	})

	t.Run("a tag moved under a skill nothing pins", func(t *testing.T) {
		img, err := imagetest.FromLayout(filepath.Join(dir, "image"))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cfg.Config.DeepCopy()
		c.Env = append(c.Env, "MOVED=1")
		moved, err := mutate.Config(img, *c)
		if err != nil {
			t.Fatal(err)
		}
		ref := imagetest.Registry(t) + "/skills/moving:1"
		first := imagetest.Push(t, ref, img)
		cacheDir := filepath.Join(t.TempDir(), "images")
		// No Digest: not trusted by the store, not locked.
		s := sandbox.Spec{SkillID: "test/moving", Digest: "sha256:" + strings.Repeat("1", 64), BundleDir: dir, Container: &sandbox.Container{Image: ref}}
		open := func(s sandbox.Spec) (sandbox.Sandbox, error) {
			return New(Options{ImageCache: cacheDir}).Open(context.Background(), s)
		}
		run := func(s sandbox.Spec) map[string]any {
			t.Helper()
			sb, err := open(s)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer sb.Close()
			res, err := call(t, sb, map[string]any{})
			if err != nil {
				t.Fatal(err)
			}
			return value(t, res)
		}
		if v := run(s); v["env"].(map[string]any)["MOVED"] != nil {
			t.Fatalf("first run: %v", v["env"])
		}
		second := imagetest.Push(t, ref, moved)
		_, err = open(s)
		var denied *errdefs.DeniedError
		if !errors.As(err, &denied) || !strings.Contains(err.Error(), "now resolves to "+second+", not the "+first) ||
			!strings.Contains(denied.Grant, "skillbox image pull "+ref) {
			t.Fatalf("Open after the tag moved: %v; want denied naming both digests and image pull", err)
		}
		// Another version of the skill (an edited bundle) pins afresh.
		edited := s
		edited.Digest = "sha256:" + strings.Repeat("2", 64)
		if v := run(edited); v["env"].(map[string]any)["MOVED"] != "1" {
			t.Errorf("an edited bundle did not run the tag's new image: %v", v["env"])
		}
		// The operator accepts the new image: every pin of the tag moves.
		r, err := image.ParseRef(ref, "")
		if err != nil {
			t.Fatal(err)
		}
		changed, err := (&image.Cache{Dir: cacheDir}).Repin(image.Pinned{Ref: r, Digest: image.Digest(second)})
		if err != nil || len(changed) != 1 || string(changed[0].Previous) != first || changed[0].Skill != "test/moving" {
			t.Fatalf("Repin: %+v, %v; want the first version's pin moved from %s", changed, err, first)
		}
		if v := run(s); v["env"].(map[string]any)["MOVED"] != "1" {
			t.Errorf("after the re-pin: %v", v["env"])
		}
		// A digest reference and a pinned (trusted, locked) Spec record
		// nothing: nothing can move under them.
		byDigest := s
		byDigest.Container = &sandbox.Container{Image: strings.TrimSuffix(ref, ":1") + "@" + first}
		run(byDigest)
		pins, err := (&image.Cache{Dir: cacheDir}).FirstPins()
		if err != nil || len(pins) != 2 {
			t.Errorf("first pins %+v, %v; want the two versions' of the tag only", pins, err)
		}
	})

	t.Run("hostile layer", func(t *testing.T) {
		// A layer on top of the image with device nodes, a link to a host
		// folder and a file written through it, a set-group-id file and a
		// whiteout of the marker: what the skill sees is the image as
		// unpacked (no devices, the link's file inside the image, no
		// set-id bit, the marker gone); the host folder stays empty.
		host := t.TempDir()
		os.Chmod(host, 0o777)
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range []*tar.Header{
			{Name: "usr/local/dev-mem", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 1},
			{Name: "usr/local/sda", Typeflag: tar.TypeBlock, Mode: 0o666, Devmajor: 8},
			{Name: "usr/local/escape", Typeflag: tar.TypeSymlink, Linkname: "../../../../../.." + host, Mode: 0o777},
			{Name: "usr/local/escape/planted", Typeflag: tar.TypeReg, Mode: 0o644, Size: 7},
			{Name: "usr/local/bin/sgid", Typeflag: tar.TypeReg, Mode: 0o2755, Size: 7},
			{Name: ".wh.image-marker", Typeflag: tar.TypeReg, Mode: 0o644},
		} {
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if h.Size > 0 {
				tw.Write([]byte("planted"))
			}
		}
		tw.Close()
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
		if err != nil {
			t.Fatal(err)
		}
		base, err := imagetest.FromLayout(filepath.Join(dir, "image"))
		if err != nil {
			t.Fatal(err)
		}
		hostile, err := mutate.AppendLayers(base, layer)
		if err != nil {
			t.Fatal(err)
		}
		ref := imagetest.Registry(t) + "/skills/hostile:1"
		imagetest.Push(t, ref, hostile)
		b := bundle(t, `        import stat
        return {p: os.path.lexists(p) for p in ["/usr/local/dev-mem", "/usr/local/sda", "/image-marker", "/usr/local/escape/planted"]} | {
            "sgid": bool(os.stat("/usr/local/bin/sgid").st_mode & stat.S_ISGID),
            "planted": open("/usr/local/escape/planted").read()}`)
		sb := openBox(t, Options{ImageCache: filepath.Join(t.TempDir(), "images")}, sandbox.Spec{BundleDir: b, Container: &sandbox.Container{Image: ref}})
		res, err := call(t, sb, map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"/usr/local/dev-mem": false, "/usr/local/sda": false, "/image-marker": false,
			"/usr/local/escape/planted": true, "sgid": false, "planted": "planted"}
		if diff := cmp.Diff(want, value(t, res)); diff != "" {
			t.Errorf("the hostile layer as the skill sees it (-want +got):\n%s", diff)
		}
		if ents, _ := os.ReadDir(host); len(ents) != 0 {
			t.Errorf("LEAK: the image's link wrote into the host folder: %v", ents)
		}
	})

	t.Run("egress and a bound secret", func(t *testing.T) {
		const value = "sk-live-REAL-SECRET-in-image-0123456789"
		placeholder := egress.NewPlaceholder()
		pki := newPKI(t, "api.test")
		var hits seen
		srv := httptest.NewUnstartedServer(hits.handler("tls"))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.leaf}}
		srv.StartTLS()
		defer srv.Close()
		d := newTestDriver(Options{ImageCache: cache}, testSeams{roots: pki.pool})
		sb := openWith(t, d, sandbox.Spec{
			BundleDir: bundle(t, netSkill),
			Container: &sandbox.Container{Image: "oci:" + filepath.Join(dir, "image")},
			Network:   []sandbox.HostPort{{Host: "api.test"}},
			Resolve:   map[string][]netip.Addr{"api.test": {loopback}},
			Env:       map[string]string{"API_KEY": placeholder},
			Secrets: []sandbox.SecretBinding{{Name: "API_KEY", Placeholder: placeholder, Value: value,
				Hosts: []sandbox.HostPort{{Host: "api.test"}}}},
		})
		var log auditLog
		out := runOps(t, sb, log.Ctx(), map[string]string{"API_KEY": placeholder},
			map[string]any{"op": "view"},
			map[string]any{"op": "get", "url": fmt.Sprintf("https://api.test:%d/bound", portOfURL(t, srv.URL)),
				"headers": map[string]string{"X-Api-Key": placeholder}},
		)
		raw, _ := json.Marshal(out)
		if strings.Contains(string(raw), value) {
			t.Errorf("LEAK: the skill saw the secret's value: %s", raw)
		}
		if ca := out[0].Env["SSL_CERT_FILE"]; ca != "/.skillbox-egress/ca.pem" || !strings.Contains(out[0].CA, "BEGIN CERTIFICATE") {
			t.Errorf("the proxy's CA in the image's jail: SSL_CERT_FILE %q, %d bytes", ca, len(out[0].CA))
		}
		if o := out[1]; o.Status != float64(200) || !strings.Contains(o.Body, `"key_seen":"true"`) {
			t.Errorf("request to the bound host from the image: %+v", o)
		}
		if reqs := hits.all(); len(reqs) != 1 || reqs[0].Header.Get("X-Api-Key") != value {
			t.Errorf("the server did not get the value in place of the placeholder: %d requests", len(reqs))
		}
	})

	t.Run("the skill's import exits", func(t *testing.T) {
		b := bundle(t, "        return {}")
		src, _ := os.ReadFile(filepath.Join(b, "skill.py"))
		src = append([]byte("import os, sys\nsys.stderr.write('import-boom\\n')\nsys.stderr.flush()\nos._exit(3)\n"), src...)
		if err := os.WriteFile(filepath.Join(b, "skill.py"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		// The untrusted image's first jail starts at Open (a spare), so
		// the import fails there; were it started by the call, the call.
		sb, err := New(Options{ImageCache: cache}).Open(context.Background(),
			sandbox.Spec{SkillID: "test/skill", BundleDir: b, Container: &sandbox.Container{Image: "oci:" + filepath.Join(dir, "image")}})
		if err == nil {
			defer sb.Close()
			_, err = call(t, sb, map[string]any{})
		}
		if err == nil || !strings.Contains(err.Error(), "or the skill's import exited") || !strings.Contains(err.Error(), "stderr: import-boom") {
			t.Fatalf("a skill that exits on import: %v; want the worker's exit explained, with its stderr", err)
		}
	})

	t.Run("python version recorded", func(t *testing.T) {
		// The untrusted subtest opened the image: its python's version
		// was probed (jailed) and recorded beside the rootfs.
		d, err := imagetest.Digest(filepath.Join(dir, "image"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := (&image.Cache{Dir: cache}).Lookup(image.Digest(d))
		if err != nil || img == nil {
			t.Fatalf("image not in the cache: %v", err)
		}
		info, ok := img.PythonRecord("/usr/bin/python3")
		if !ok || info.Implementation != "cpython" || !strings.HasPrefix(info.Version, "3.11.") {
			t.Errorf("recorded python of the test image: %+v, %v; want CPython 3.11", info, ok)
		}
	})

	// Images whose "python" is a shell script: the version probe runs it
	// in a jail and the skill is invalid before any call.
	fake := func(name, script string) string {
		p := filepath.Join(t.TempDir(), name)
		imagetest.ShellImage(t, p, map[string]string{"/usr/bin/python3": "#!/bin/sh\n" + script + "\n"})
		return "oci:" + p
	}
	old, pypy, junk, fails := fake("old", "echo 3.6.9 cpython"), fake("pypy", "echo 3.10.13 pypy"),
		fake("junk", "echo hello; echo there"), fake("fails", "echo 'Unknown option: -I' >&2; exit 2")

	refusals := []struct {
		name string
		c    sandbox.Container
		kind error
		msg  string
	}{
		{"pinned digest moved", sandbox.Container{Image: "oci:image", Digest: "sha256:" + strings.Repeat("0", 64)}, errdefs.ErrDenied, "not the sha256:000"},
		{"no such python", sandbox.Container{Image: "oci:image", Python: "/opt/python3"}, errdefs.ErrInvalid, "image python /opt/python3: not in the image"},
		{"escaping path", sandbox.Container{Image: "oci:../elsewhere"}, errdefs.ErrInvalid, "must stay inside"},
		{"dockerfile not built", sandbox.Container{Dockerfile: "Dockerfile"}, errdefs.ErrUnavailable, "none is built for this version of the skill: run 'skillbox image build"},
		{"not a python", sandbox.Container{Image: "oci:image", Python: "/usr/local/bin/suid-id"}, errdefs.ErrInvalid, "its python /usr/local/bin/suid-id could not report its version (exit status 1); skillbox's harness needs CPython 3.8 or later; stderr: "},
		{"old python", sandbox.Container{Image: old}, errdefs.ErrInvalid, ": its python /usr/bin/python3 is CPython 3.6.9, older than 3.8: skillbox's harness needs CPython 3.8 or later"},
		{"old python again (recorded)", sandbox.Container{Image: old}, errdefs.ErrInvalid, "is CPython 3.6.9, older than 3.8"},
		{"not cpython", sandbox.Container{Image: pypy}, errdefs.ErrInvalid, "its python /usr/bin/python3 is PyPy 3.10.13, not CPython"},
		{"no version line", sandbox.Container{Image: junk}, errdefs.ErrInvalid, `its python /usr/bin/python3 did not report its version: not a version line: "hello\nthere"`},
		{"python fails", sandbox.Container{Image: fails}, errdefs.ErrInvalid, "could not report its version (exit status 2); skillbox's harness needs CPython 3.8 or later; stderr: Unknown option: -I"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{ImageCache: cache}).Open(context.Background(), spec(tt.c))
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Open: %v, want %v with %q", err, tt.kind, tt.msg)
			}
		})
	}
}
