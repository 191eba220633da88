//go:build unix

package pyodide_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/skillbox-dev/skillbox/sandbox/sandboxtest"
)

// probeSkill runs one escape attempt, named by params["probe"], and
// reports {"escaped": bool, "detail": str}. Anything that raises counts
// as contained.
const probeSkill = `
import sys

import js
from skillware.core.base_skill import BaseSkill

MARK = []


async def _await(x):
    return await x


class Probe(BaseSkill):
    async def execute(self, params):
        p = params["probe"]
        arg = params.get("arg", "")
        try:
            detail = await self.run(p, arg)
        except BaseException as e:
            return {"escaped": False, "detail": type(e).__name__ + ": " + str(e)[:300]}
        return {"escaped": True, "detail": str(detail)[:300]}

    async def run(self, p, arg):
        D = js.Deno
        if p == "env":
            return D.env.toObject()
        if p == "env_get":
            return D.env.get("HOME")
        if p == "read":
            return D.readTextFileSync(arg)
        if p == "read_dir":
            return [e.name for e in D.readDirSync(arg)]
        if p == "write":
            D.writeTextFileSync(arg, "x")
            return "wrote " + arg
        if p == "command":
            return D.Command.new("/bin/sh", js.Object.fromEntries([["args", ["-c", "id"]]])).outputSync().code
        if p == "kill":
            D.kill(int(arg), "SIGKILL")
            return "signalled " + arg
        if p == "hostname":
            return D.hostname()
        if p == "dlopen":
            return D.dlopen("libc.so.6", js.Object.new())
        if p == "fetch":
            r = await js.fetch(arg)
            return await r.text()
        if p == "connect":
            host, port = arg.rsplit(":", 1)
            c = await D.connect(js.Object.fromEntries([["hostname", host], ["port", int(port)]]))
            return "connected"
        if p == "pyfetch":
            from pyodide.http import pyfetch
            r = await pyfetch(arg)
            return await r.string()
        if p == "urllib":
            import urllib.request
            return urllib.request.urlopen(arg, timeout=2).read()
        if p == "function_global":
            g = js.Function.new("return this")()
            return g.Deno.env.get("HOME") or g.Deno.readTextFileSync("/etc/hostname")
        if p == "import":
            return await js.eval("(u) => import(u)")(arg)
        if p == "state":
            seen = {"py": bool(MARK), "js": bool(getattr(js.globalThis, "skillboxMark", None)),
                    "mod": "skillbox_probe_mark" in sys.modules}
            MARK.append(1)
            js.globalThis.skillboxMark = 1
            sys.modules["skillbox_probe_mark"] = sys
            if any(seen.values()):
                return seen
            raise RuntimeError("fresh: %r" % seen)
        raise ValueError("unknown probe " + p)
`

// TestEscapes runs each escape attempt through the backend: every one must
// fail inside the sandbox, and the host side must see nothing.
func TestEscapes(t *testing.T) {
	d := driver(t)
	dir := filepath.Join(t.TempDir(), "probe")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "manifest.yaml"), []byte("name: probe\nversion: 0.1.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "skill.py"), []byte(probeSkill), 0o644)
	secret := filepath.Join(t.TempDir(), "host-secret.txt")
	os.WriteFile(secret, []byte("host-secret-value"), 0o644)
	t.Setenv("SKILLBOX_PROBE_SECRET", "env-secret-value")

	// A loopback listener the skill must not reach.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Write([]byte("HTTP/1.0 200 OK\r\n\r\nloopback-reached"))
			c.Close()
		}
	}()
	url := "http://" + ln.Addr().String() + "/"

	opts := sandboxtest.OptionsFromProbe(context.Background(), d)
	spec := sandboxtest.SpecFor(dir, opts)
	sb := sandboxtest.Open(t, d, spec)
	// An escaped canary would appear in a result; check every detail too.
	canaries := []string{"host-secret-value", "env-secret-value", "loopback-reached", "root:x:0:0"}

	// want is what the containment error must say, so that a probe failing
	// for another reason (a typo, a missing API) does not pass as contained.
	cases := []struct{ name, probe, arg, want string }{
		{"DenoEnv", "env", "", "Requires env"},
		{"DenoEnvGet", "env_get", "", "Requires env"},
		{"ReadEtcPasswd", "read", "/etc/passwd", "Requires read"},
		{"ReadHostFile", "read", secret, "Requires read"},
		{"ReadHostBundle", "read", filepath.Join(dir, "skill.py"), "Requires read"},
		{"ReadProcEnviron", "read", "/proc/self/environ", "Requires read"},
		{"ReadDirRoot", "read_dir", "/", "Requires read"},
		{"WriteTmp", "write", filepath.Join(t.TempDir(), "written"), "Requires write"},
		{"Command", "command", "", "Requires run"},
		// This test process: outside the jail, Deno's own pid (1) inside.
		{"Kill", "kill", strconv.Itoa(os.Getpid()), "Requires run"},
		{"Hostname", "hostname", "", "Requires sys"},
		{"FFI", "dlopen", "", "Requires ffi"},
		{"FetchLoopback", "fetch", url, "Requires net"},
		{"ConnectLoopback", "connect", ln.Addr().String(), "Requires net"},
		{"PyfetchLoopback", "pyfetch", url, "Requires net"},
		{"UrllibLoopback", "urllib", url, "URLError"},
		{"FunctionConstructorGlobal", "function_global", "", "Requires env"},
		{"ImportRemote", "import", "https://deno.land/std/version.ts", "Requires import"},
		{"ImportRemoteLoopback", "import", url + "x.js", "Requires import"},
		{"ImportHostFile", "import", "file://" + secret, "Requires read"},
		{"ImportNpm", "import", "npm:left-pad", "--no-npm"},
		{"StateBetweenCalls1", "state", "", "fresh"},
		{"StateBetweenCalls2", "state", "", "fresh"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err, _ := sandboxtest.Call(t, sb, opts, map[string]any{"probe": c.probe, "arg": c.arg}, nil)
			var got struct {
				Escaped bool   `json:"escaped"`
				Detail  string `json:"detail"`
			}
			sandboxtest.MustResult(t, res, err, &got)
			if got.Escaped {
				t.Errorf("probe %s escaped: %s", c.probe, got.Detail)
			} else if !strings.Contains(got.Detail, c.want) {
				t.Errorf("probe %s failed, but not by containment (want %q): %s", c.probe, c.want, got.Detail)
			}
			for _, s := range canaries {
				if strings.Contains(got.Detail, s) || strings.Contains(string(res.Stdout)+string(res.Stderr), s) {
					t.Errorf("probe %s leaked %q: %s", c.probe, s, got.Detail)
				}
			}
			t.Logf("contained: %s", got.Detail)
		})
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the loopback listener accepted %d connections from the sandbox", n)
	}
}
