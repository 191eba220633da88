//go:build linux

package worker

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The stand-in for the Skillware SDK (sdk.py): what a skill sees of it when
// the real package is absent, and that a real package wins when present.

// callJSON runs one call and decodes its result.
func callJSON(t *testing.T, p *Process, id uint64, params string, config map[string]string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(mustCall(t, p, id, params, config)), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func wantJSON(t *testing.T, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	if diff := cmp.Diff(w, got); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

func TestSDKAsync(t *testing.T) {
	for _, tc := range []struct{ name, skill, want string }{
		{"aexecute only", `
import asyncio
from skillware.core.base_skill import BaseSkill

class OnlyAsync(BaseSkill):
    async def aexecute(self, params):
        await asyncio.sleep(0)
        return {"ran": "aexecute", "x": params["x"]}
`, `{"ran":"aexecute","x":1}`},
		// Skillware's hosts call execute(); aexecute is for hosts that await.
		{"both", `
from skillware.core.base_skill import BaseSkill

class Both(BaseSkill):
    def execute(self, params):
        return {"ran": "execute"}

    async def aexecute(self, params):
        return {"ran": "aexecute"}
`, `{"ran":"execute"}`},
		// The default aexecute runs execute in a thread; the bridge runs a
		// coroutine even when called where an event loop is running.
		{"default aexecute and nested bridge", `
import asyncio, threading
from skillware.core.base_skill import BaseSkill

class Inner(BaseSkill):
    async def aexecute(self, params):
        return threading.current_thread() is threading.main_thread()

class Outer(BaseSkill):
    def execute(self, params):
        async def main():
            return {"inner_on_main": Inner().execute({}),
                    "sync_via_default": await Plain().aexecute({"x": 2})}
        return asyncio.run(main())

class Plain(BaseSkill):
    def execute(self, params):
        return params["x"] * 10

Inner.__module__ = Plain.__module__ = "elsewhere"  # not candidates
`, `{"inner_on_main":false,"sync_via_default":20}`},
		{"neither", `
from skillware.core.base_skill import BaseSkill

class Neither(BaseSkill):
    pass
`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := load(t, writeBundle(t, map[string]string{"skill.py": tc.skill}), ModeSingle)
			if tc.want == "" {
				_, err := call(t, p, 1, `{"x":1}`, nil)
				if err == nil || !strings.Contains(err.Error(), "must implement execute() or aexecute()") {
					t.Fatalf("err = %v", err)
				}
				return
			}
			wantJSON(t, callJSON(t, p, 1, `{"x":1}`, nil), tc.want)
		})
	}
}

const credentialSkill = `
from skillware.core.base_skill import BaseSkill

class Cred(BaseSkill):
    def execute(self, params):
        return self.credential("KEY")
`

// TestSDKCredentialOrder: config (the host's granted values) first, then
// the environment; values are stripped and blank counts as unset.
func TestSDKCredentialOrder(t *testing.T) {
	bundle := writeBundle(t, map[string]string{"skill.py": credentialSkill})
	for _, tc := range []struct {
		name   string
		config map[string]string
		env    []string
		want   string
	}{
		{"config wins", map[string]string{"KEY": "cfg"}, []string{"KEY=env"}, `"cfg"`},
		{"config stripped", map[string]string{"KEY": "  cfg \n"}, nil, `"cfg"`},
		{"blank config falls back", map[string]string{"KEY": "   "}, []string{"KEY=env"}, `"env"`},
		{"env only", nil, []string{"KEY= env "}, `"env"`},
		{"blank env", nil, []string{"KEY=  "}, `null`},
		{"neither", map[string]string{"OTHER": "x"}, []string{"OTHER=y"}, `null`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := load(t, bundle, ModeSingle, tc.env...)
			if got := mustCall(t, p, 1, `{}`, tc.config); got != tc.want {
				t.Fatalf("credential = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestSDKSkillContext: SkillContext(secret_provider=...) resolves the
// credentials on every execute() and builds the skill with them as config.
// skillbox plays that host: each call gets a new instance built with that
// call's config, so a skill that reads credentials in __init__ sees them.
// The class itself is a host API and says so when built in a sandbox.
func TestSDKSkillContext(t *testing.T) {
	bundle := writeBundle(t, map[string]string{"skill.py": `
import skillware
from skillware import SkillContext
from skillware.context import SkillContext as Same
from skillware.core.base_skill import BaseSkill

INSTANCES = 0

class Ctx(BaseSkill):
    def __init__(self, config=None):
        super().__init__(config)
        global INSTANCES
        INSTANCES += 1
        self.api_key = self.credential("API_KEY")

    def execute(self, params):
        try:
            SkillContext(skill="x/y")
            built = "built"
        except RuntimeError as e:
            built = str(e)
        return {"key": self.api_key, "instances": INSTANCES, "same": SkillContext is Same,
                "all": skillware.__all__, "built": built}
`})
	p, _ := load(t, bundle, ModeSession)
	note := "SkillContext is a host API; inside skillbox the host is skillbox, which passes each call's granted credentials as config"
	wantJSON(t, callJSON(t, p, 1, `{}`, map[string]string{"API_KEY": "first"}),
		`{"key":"first","instances":1,"same":true,"all":["SkillContext"],"built":"`+note+`"}`)
	wantJSON(t, callJSON(t, p, 2, `{}`, map[string]string{"API_KEY": "rotated"}),
		`{"key":"rotated","instances":2,"same":true,"all":["SkillContext"],"built":"`+note+`"}`)
}

func TestSDKSecretProviders(t *testing.T) {
	bundle := writeBundle(t, map[string]string{"skill.py": `
from skillware.core.secrets import (SecretProvider, EnvSecretProvider, MappingSecretProvider,
    CallableSecretProvider, resolve_manifest_env_vars, coerce_secret_provider)
from skillware.core.base_skill import BaseSkill

class Secrets(BaseSkill):
    def execute(self, params):
        env = EnvSecretProvider()
        mapping = MappingSecretProvider({"A": " a ", "B": "", "C": None, 1: 2})
        asked = []
        def fetch(key):
            asked.append(key)
            return {"A": "from-vault", "B": "  "}.get(key)
        callback = CallableSecretProvider(fetch)
        manifest = {"env_vars": {"A": {"required": True}, "B": {}, "C": {}, " ": {}}}
        return {
            "env": [env.get("GRANTED"), env.get("BLANK"), env.get("UNSET")],
            "mapping": [mapping.get("A"), mapping.get("B"), mapping.get("C"), mapping.get("1")],
            "callable": [callback.get("A"), callback.get("B"), callback.get("C")],
            "resolved": resolve_manifest_env_vars(manifest, callback),
            "asked": asked,
            "no_env_vars": resolve_manifest_env_vars({"env_vars": "bad"}, env),
            "protocol": [isinstance(x, SecretProvider) for x in (env, mapping, callback, object())],
            "coerced": [coerce_secret_provider(None), type(coerce_secret_provider({"A": "x"})).__name__,
                        coerce_secret_provider(env) is env],
            "module": EnvSecretProvider.__module__ + "." + EnvSecretProvider.__qualname__,
        }
`})
	p, _ := load(t, bundle, ModeSingle, "GRANTED= g ", "BLANK=   ")
	wantJSON(t, callJSON(t, p, 1, `{}`, nil), `{
		"env": ["g", null, null],
		"mapping": ["a", null, null, "2"],
		"callable": ["from-vault", null, null],
		"resolved": {"A": "from-vault"},
		"asked": ["A", "B", "C", "A", "B", "C"],
		"no_env_vars": {},
		"protocol": [true, true, true, false],
		"coerced": [null, "MappingSecretProvider", true],
		"module": "skillware.core.secrets.EnvSecretProvider"}`)
}

const mailSkill = `
import os
from pathlib import Path
from skillware.core.base_skill import BaseSkill
from skillware.core.mail_config import (
    load_merged_mail_settings,
    resolve_addressbook_path,
    resolve_scan_state_path,
    resolve_send_ledger_path,
    resolve_signature_html,
    resolve_signature_plain,
    MailSettings, merge_mail_settings, parse_mail_block, validate_signature_text,
    slugify_contact_id, validate_addressbook_data, ENV_ADDRESSBOOK_PATH,
)

class Mail(BaseSkill):
    def execute(self, params):
        data = Path(params["data"])
        mail = load_merged_mail_settings()
        merged = merge_mail_settings([parse_mail_block({"signature_plain": " a ", "scan_state_path": ""}),
                                      parse_mail_block({"signature_plain": "b"}), parse_mail_block("junk")])
        return {
            "settings": mail.to_document_block(),
            "addressbook": str(resolve_addressbook_path(mail=mail, skill_data_dir=data)),
            "scan_state": str(resolve_scan_state_path(mail=mail, skill_data_dir=data)),
            "ledger": str(resolve_send_ledger_path(mail=mail, skill_data_dir=data)),
            "signature": list(resolve_signature_plain(mail=mail)),
            "html": list(resolve_signature_html(mail=MailSettings(), skill_local_config={"default_signature_html": "<b>x</b>"})),
            "merged": merged.to_document_block(),
            "checks": [validate_signature_text(""), validate_signature_text("my SECRET"), slugify_contact_id("Ada  Lovelace!"),
                       validate_addressbook_data({"contacts": {"ada": {"emails": ["ada@example.org"]}, "bob": {"emails": ["nope"]}}})],
            "env_name": ENV_ADDRESSBOOK_PATH,
        }
`

// TestSDKMailConfig: skillware.core.mail_config as office/gmail_handler
// uses it: the mail: sections of the global and project config files
// (project wins), GMAIL_* variables over both, the skill's data folder
// and the global config folder as fallbacks.
func TestSDKMailConfig(t *testing.T) {
	needYAML(t)
	cfg := t.TempDir()
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg, "config.yaml"), []byte("mail:\n  signature_plain: global sig\n  send_ledger_path: "+filepath.Join(cfg, "ledger.json")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := writeBundle(t, map[string]string{"skill.py": mailSkill})
	p := startWorker(t, []string{"SKILLWARE_CONFIG_DIR=" + cfg, "GMAIL_SCAN_STATE_PATH=" + filepath.Join(data, "env-scan.json")})
	// The worker's cwd is a temp dir: a project file there overrides the global one.
	project := filepath.Join(p.Cmd.Dir, ".skillware.yaml")
	if err := os.WriteFile(project, []byte("mail:\n  signature_plain: project sig\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Init(tctx(t, 20*time.Second), Init{Bundle: bundle, Mode: ModeSingle}); err != nil {
		t.Fatalf("init: %v (stderr %s)", err, p.Stderr.Bytes())
	}
	params, _ := json.Marshal(map[string]string{"data": data})
	wantJSON(t, callJSON(t, p, 1, string(params), nil), `{
		"settings": {"signature_plain": "project sig", "send_ledger_path": "`+filepath.Join(cfg, "ledger.json")+`"},
		"addressbook": "`+filepath.Join(cfg, "addressbook.yaml")+`",
		"scan_state": "`+filepath.Join(data, "env-scan.json")+`",
		"ledger": "`+filepath.Join(cfg, "ledger.json")+`",
		"signature": ["project sig", "config_plain"],
		"html": ["<b>x</b>", "skill_local_html"],
		"merged": {"signature_plain": "b"},
		"checks": [["signature is empty"], ["signature looks like it contains secret material"], "ada_lovelace",
		           ["contacts.bob has invalid email 'nope'", "contacts.bob has no valid emails"]],
		"env_name": "GMAIL_ADDRESSBOOK_PATH"}`)

	// No config file, no variables: the data folder, else the global defaults.
	home := t.TempDir()
	p2, _ := load(t, bundle, ModeSingle, "HOME="+home)
	params, _ = json.Marshal(map[string]string{"data": data})
	got := callJSON(t, p2, 1, string(params), nil).(map[string]any)
	for k, want := range map[string]any{
		"settings":    map[string]any{},
		"addressbook": filepath.Join(home, ".config/skillware/addressbook.yaml"),
		"scan_state":  filepath.Join(data, ".gmail_scan_state.json"),
		"ledger":      filepath.Join(data, "send_ledger.json"),
		"signature":   []any{"", "none"},
	} {
		if diff := cmp.Diff(want, got[k]); diff != "" {
			t.Errorf("%s without config (-want +got):\n%s", k, diff)
		}
	}
}

// sdkModules are the modules the stand-in provides.
var sdkModules = []string{"skillware", "skillware.context", "skillware.core", "skillware.core.base_skill",
	"skillware.core.env", "skillware.core.mail_config", "skillware.core.secrets"}

// probeSkill reports, for each module of sdkModules, whether it is the
// stand-in ("stand-in"), the fake real package ("real") or missing.
const probeSkill = `
import importlib, sys
from skillware.core.base_skill import BaseSkill

class Probe(BaseSkill):
    def execute(self, params):
        out = {}
        for name in params["modules"]:
            try:
                m = importlib.import_module(name)
            except ImportError as e:
                out[name] = "missing"
                continue
            out[name] = "stand-in" if getattr(m, "__skillbox_stand_in__", False) else getattr(m, "ORIGIN", "?")
        out["config"] = self.credential("K")
        return out
`

// fakeSDKEnv makes a virtual environment whose site-packages holds a fake
// `skillware` package with every module of sdkModules but mail_config,
// each saying ORIGIN = "real". It returns the environment's python.
func fakeSDKEnv(t *testing.T) string {
	t.Helper()
	needPython(t)
	dir := t.TempDir()
	if out, err := exec.Command(testPython, "-m", "venv", "--without-pip", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot make a virtual environment: %v %s", err, out)
	}
	out, err := exec.Command(filepath.Join(dir, "bin", "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").Output()
	if err != nil {
		t.Fatal(err)
	}
	site := strings.TrimSpace(string(out))
	files := map[string]string{
		"skillware/__init__.py":      "ORIGIN = 'real'\n",
		"skillware/context.py":       "ORIGIN = 'real'\n",
		"skillware/core/__init__.py": "ORIGIN = 'real'\n",
		"skillware/core/base_skill.py": `ORIGIN = 'real'
class BaseSkill:
    def __init__(self, config=None):
        self.config = config or {}
    def credential(self, key):
        return "real:" + str(self.config.get(key))
`,
		"skillware/core/env.py":     "ORIGIN = 'real'\n",
		"skillware/core/secrets.py": "ORIGIN = 'real'\n",
	}
	for name, body := range files {
		p := filepath.Join(site, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "bin", "python")
}

// TestSDKRealPackageWins: with a real `skillware` in the skill's
// environment every skillware.* module comes from it (a module it lacks is
// missing, never the stand-in's), in single mode and in a zygote's call
// children whether or not the zygote processed site; without it the
// stand-in provides them all.
func TestSDKRealPackageWins(t *testing.T) {
	venvPython := fakeSDKEnv(t)
	real := map[string]any{"config": "real:v"}
	standIn := map[string]any{"config": "v"}
	for _, m := range sdkModules {
		real[m] = "real"
		standIn[m] = "stand-in"
	}
	real["skillware.core.mail_config"] = "missing"
	params, _ := json.Marshal(map[string]any{"modules": sdkModules})
	bundle := writeBundle(t, map[string]string{"skill.py": probeSkill})
	config := map[string]string{"K": "v"}

	check := func(t *testing.T, got string, want map[string]any) {
		t.Helper()
		var v any
		if err := json.Unmarshal([]byte(got), &v); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		if diff := cmp.Diff(any(want), v); diff != "" {
			t.Errorf("modules (-want +got):\n%s", diff)
		}
	}
	single := func(t *testing.T, python string, want map[string]any) {
		cmd := exec.Command(python, Argv(python)[1:]...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
		cmd.Dir = t.TempDir()
		p, err := Start(tctx(t, 20*time.Second), cmd, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		if _, err := p.Init(tctx(t, 20*time.Second), Init{Bundle: bundle, Mode: ModeSingle}); err != nil {
			t.Fatalf("init: %v (stderr %s)", err, p.Stderr.Bytes())
		}
		got, err := p.Call(tctx(t, 20*time.Second), 1, params, config)
		if err != nil {
			t.Fatalf("call: %v (stderr %s)", err, p.Stderr.Bytes())
		}
		check(t, string(got), want)
	}
	zygote := func(t *testing.T, python string, trusted bool, want map[string]any) {
		z, _ := startZygoteArgv(t, Argv(python), Init{Bundle: bundle, TrustedEnv: trusted}, nil)
		for id := uint64(1); id <= 2; id++ {
			c, err := z.Fork(tctx(t, 20*time.Second), id, 64<<10)
			if err != nil {
				t.Fatalf("fork: %v (stderr %s)", err, z.stderr.Bytes())
			}
			got, err := c.Call(tctx(t, 20*time.Second), params, config)
			if err != nil {
				t.Fatalf("call %d: %v (child stderr %s)", id, err, c.Stderr.Bytes())
			}
			c.Wait(tctx(t, 20*time.Second))
			check(t, string(got), want)
		}
	}
	t.Run("single/real", func(t *testing.T) { single(t, venvPython, real) })
	t.Run("single/absent", func(t *testing.T) { single(t, testPython, standIn) })
	t.Run("zygote/real", func(t *testing.T) { zygote(t, venvPython, false, real) })
	t.Run("zygote/real/trusted-env", func(t *testing.T) { zygote(t, venvPython, true, real) })
	t.Run("zygote/absent", func(t *testing.T) { zygote(t, testPython, false, standIn) })
}
