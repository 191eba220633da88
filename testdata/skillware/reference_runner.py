"""Makes the expected.json files of the Skillware fixtures: each case's
result as the skill returns it when run in-process the way Skillware runs
it, not through skillbox.

    python3 -B reference_runner.py [--check] [CATEGORY/NAME ...]

With no names it runs every folder here that has an expected.json. The
cases (params, and env: the variables the host has) are read back from
each expected.json and their results written anew; --check only compares
and exits 1 on a difference. Every case runs in a fresh
`python3 -B -I` process whose environment is PATH, LANG and the case's env.

In that process:
1. the SDK: a real `skillware` package when the interpreter has one, else
   skillbox's stand-in (internal/worker/sdk.py, the file the harness
   embeds) installed as `skillware`; stderr says which;
2. Skillware's loader: manifest.yaml read with PyYAML; the skill folder
   registered as a package (a module named skillware_skill_<category>_<name>
   with __path__ = [folder]) and skill.py executed as its `skill`
   submodule; the one class defined there that subclasses BaseSkill;
3. Skillware's host (SkillContext with the environment as secret
   provider): config is the manifest's env_vars that have a non-blank value
   in the environment, stripped; a fresh instance cls(config=config);
   validate_params(params); execute(params).

A folder's expected.json may instead hold cases that name a skill by id
("skill": "category/name"), run from a working directory ("cwd", relative
to that folder) with extra variables ("roots_env"; "{fixture}" in a value
is that folder's absolute path). The child then finds the skill as
Skillware 0.5's loader does (resolve_skill_id): the roots come from the
global config.yaml and the project .skillware.yaml when either exists
(paths.project, paths.external, resolution.order,
legacy.honor_skillware_skill_path), else from SKILLWARE_SKILL_PATH and the
./skills walk; the first root holding category/name/skill.py wins. Those
folders are run with `reference_runner.py ../skillware-roots` (a path).

Standard library and PyYAML only.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.join(HERE, "..", "..", "internal", "worker", "sdk.py")


WALK = 6  # Skillware looks at the working directory and its first five parents


def _walk_up(start):
    current = os.path.realpath(start)
    for _ in range(WALK):
        yield current
        parent = os.path.dirname(current)
        if parent == current:
            return
        current = parent


def _config_files():
    """The configuration files Skillware would read, global first."""
    import yaml

    override = os.environ.get("SKILLWARE_CONFIG_DIR", "").strip()
    xdg = os.environ.get("XDG_CONFIG_HOME", "").strip()
    if override:
        gdir = os.path.expanduser(override)
    elif xdg:
        gdir = os.path.join(os.path.expanduser(xdg), "skillware")
    else:
        gdir = os.path.join(os.path.expanduser("~"), ".config", "skillware")
    files = []
    if os.path.isfile(os.path.join(gdir, "config.yaml")):
        files.append(os.path.realpath(os.path.join(gdir, "config.yaml")))
    for d in _walk_up(os.getcwd()):
        f = os.path.join(d, ".skillware.yaml")
        if os.path.isfile(f):
            if os.path.realpath(f) not in files:
                files.append(os.path.realpath(f))
            break
    layers = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        layers.append(data if isinstance(data, dict) else {})
    return layers


def _dirs(entries):
    """Existing folders of entries (read from the working directory), each once."""
    out = []
    for e in entries:
        p = os.path.expanduser(e)
        if os.path.isdir(p):
            p = os.path.realpath(p)
            if p not in out:
                out.append(p)
    return out


def skill_roots():
    """The skill roots, in Skillware's search order (bundled left out:
    the fixtures never resolve to it)."""
    env_path = [e.strip() for e in os.environ.get("SKILLWARE_SKILL_PATH", "").strip().split(os.pathsep)]
    env_path = [e for e in env_path if e]
    skills_walk = [os.path.join(d, "skills") for d in _walk_up(os.getcwd())]
    layers = _config_files()
    if not layers:
        return _dirs(env_path + skills_walk)
    project, external, order, honor = None, [], ["project", "external", "bundled"], True
    for data in layers:
        paths = data.get("paths")
        if isinstance(paths, dict):
            if "project" in paths:
                project = "auto" if paths["project"] is None else (str(paths["project"]).strip() or "auto")
            if isinstance(paths.get("external"), list):
                for e in paths["external"]:
                    t = str(e).strip()
                    if t and t not in external:
                        external.append(t)
        res = data.get("resolution")
        if isinstance(res, dict) and "order" in res:
            raw = res["order"]
            tiers = []
            if isinstance(raw, list):
                for t in raw:
                    t = str(t).strip().lower()
                    if t in ("project", "external", "bundled") and t not in tiers:
                        tiers.append(t)
            if tiers and "bundled" not in tiers:
                tiers.append("bundled")
            order = tiers or ["project", "external", "bundled"]
        legacy = data.get("legacy")
        if isinstance(legacy, dict) and "honor_skillware_skill_path" in legacy:
            honor = bool(legacy["honor_skillware_skill_path"])
    roots = []
    for tier in order:
        if tier == "project":
            found = _dirs(skills_walk if project is None or project.lower() == "auto" else [project])
        elif tier == "external":
            found = _dirs(external + (env_path if honor else []))
        else:
            found = []
        roots += [r for r in found if r not in roots]
    return roots


def resolve_skill_id(skill_id):
    for root in skill_roots():
        folder = os.path.join(root, *skill_id.split("/"))
        if os.path.isfile(os.path.join(folder, "skill.py")):
            return folder
    raise SystemExit("skill %s not found in %s" % (skill_id, skill_roots()))


def run_case(folder):
    """Child side: run one case (params on stdin) and print its outcome."""
    import importlib
    import importlib.util
    import types

    import yaml

    with open(os.path.join(folder, "manifest.yaml"), encoding="utf-8") as f:
        manifest = yaml.safe_load(f) or {}

    sdk = types.ModuleType("skillbox_sdk")
    with open(SDK, encoding="utf-8") as f:
        exec(compile(f.read(), SDK, "exec"), sdk.__dict__)
    stand_in = sdk._sdk_install(manifest)
    base = importlib.import_module("skillware.core.base_skill")
    sys.stderr.write("sdk: %s\n" % ("skillbox stand-in" if stand_in else "skillware at " + base.__file__))

    category, name = folder.rstrip(os.sep).split(os.sep)[-2:]
    pkg_name = "skillware_skill_%s_%s" % (category, name)
    pkg = types.ModuleType(pkg_name)
    pkg.__path__ = [folder]
    sys.modules[pkg_name] = pkg
    spec = importlib.util.spec_from_file_location(pkg_name + ".skill", os.path.join(folder, "skill.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    classes = [c for c in vars(module).values()
               if isinstance(c, type) and issubclass(c, base.BaseSkill) and c is not base.BaseSkill
               and c.__module__ == module.__name__]
    if len(classes) != 1:
        raise SystemExit("%s: %d BaseSkill subclasses" % (folder, len(classes)))

    config = {}
    env_vars = manifest.get("env_vars")
    for key in env_vars if isinstance(env_vars, dict) else ():
        value = os.environ.get(key, "").strip()
        if value:
            config[key] = value
    params = json.load(sys.stdin)
    skill = classes[0](config=config)
    skill.validate_params(params)
    result = skill.execute(params)
    sys.stdout.write(json.dumps({"result": result}, allow_nan=False))


# HTTPS_ORIGIN in a case's params stands for the origin of a loopback
# HTTPS service (fixture_service): its certificate comes from the test CA
# of ../skillware-tls, which the case's host trusts (SSL_CERT_FILE and
# REQUESTS_CA_BUNDLE name it: where a Skillware host would install it).
# TestSkillwareFixtures serves the same answers and substitutes the same
# placeholder, with that CA as the operator's ca_file.
HTTPS_ORIGIN = "$HTTPS_ORIGIN"
TLS = os.path.join(HERE, "..", "skillware-tls")
_service = []


def fixture_service():
    """Starts (once) the loopback HTTPS service and returns its origin:
    GET /v1/status answers 200 {"path", "service"}, anything else 404
    {"error": "not found"}."""
    if _service:
        return _service[0]
    import http.server
    import ssl
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/v1/status":
                code, body = 200, {"path": self.path, "service": "skillware-fixture"}
            else:
                code, body = 404, {"error": "not found"}
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(TLS, "server.pem"), os.path.join(TLS, "server.key"))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _service.append("https://localhost:%d" % srv.server_address[1])
    return _service[0]


def run(folder, case):
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    env.update(case.get("env") or {})
    params = json.dumps(case["params"])
    if HTTPS_ORIGIN in params:
        params = params.replace(HTTPS_ORIGIN, fixture_service())
        ca = os.path.abspath(os.path.join(TLS, "ca.pem"))
        env.update({"SSL_CERT_FILE": ca, "REQUESTS_CA_BUNDLE": ca})
    argv, cwd = ["--case", folder], HERE
    if "skill" in case:
        argv, cwd = ["--case-id", case["skill"]], os.path.join(folder, case.get("cwd", "."))
        for k, v in (case.get("roots_env") or {}).items():
            env[k] = v.replace("{fixture}", folder)
    proc = subprocess.run([sys.executable, "-B", "-I", os.path.abspath(__file__)] + argv,
                          input=params, capture_output=True, text=True, env=env,
                          cwd=cwd)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise SystemExit("%s: case %s failed" % (folder, json.dumps(case["params"])))
    return json.loads(proc.stdout)["result"]


def main(argv):
    if argv[:1] == ["--case"]:
        run_case(argv[1])
        return 0
    if argv[:1] == ["--case-id"]:
        run_case(resolve_skill_id(argv[1]))
        return 0
    check = argv[:1] == ["--check"]
    names = argv[1:] if check else argv
    if not names:
        names = sorted(os.path.relpath(root, HERE) for root, _, files in os.walk(HERE)
                       if "expected.json" in files)
    status = 0
    for name in names:
        folder = os.path.realpath(os.path.join(HERE, name))
        path = os.path.join(folder, "expected.json")
        with open(path, encoding="utf-8") as f:
            old = f.read()
        cases = json.loads(old)
        for case in cases:
            case["result"] = run(folder, case)
        new = json.dumps(cases, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        if new == old:
            print("%s: unchanged" % name)
        elif check:
            print("%s: differs from expected.json" % name)
            status = 1
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(new)
            print("%s: written" % name)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
