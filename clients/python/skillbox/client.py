"""Ways to reach skillbox: its HTTP API, or its command line."""

import json
import os
import shlex
import subprocess
import urllib.error
import urllib.parse
import urllib.request


class SkillboxError(Exception):
    """A failed call or lookup.

    ``kind`` is skillbox's error kind (skill, invalid, not_found, denied,
    timeout, limit, unavailable, unsupported, internal); for a skill's own
    exception ``type`` and ``traceback`` come from Python inside the sandbox.
    ``envelope`` is the whole failure answer.
    """

    def __init__(self, kind, message, type=None, traceback=None, envelope=None):
        super().__init__("%s: %s" % (kind, message))
        self.kind = kind
        self.message = message
        self.type = type
        self.traceback = traceback
        self.envelope = envelope

    @classmethod
    def from_envelope(cls, env):
        err = (env or {}).get("error") or {}
        return cls(
            err.get("kind", "internal"),
            err.get("message", "no error message"),
            err.get("type"),
            err.get("traceback"),
            env,
        )


def _check(env):
    if not isinstance(env, dict) or "ok" not in env:
        raise SkillboxError("internal", "unexpected answer from skillbox: %r" % (env,))
    if not env["ok"]:
        raise SkillboxError.from_envelope(env)
    return env


class HTTPClient:
    """Talks to ``skillbox serve --http``: ``url`` is its base URL."""

    def __init__(self, url, token=None, timeout=300.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _request(self, method, path, body=None):
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                env = json.loads(raw)
            except ValueError:
                raise SkillboxError("internal", "HTTP %d from skillbox: %.200r" % (e.code, raw)) from None
            raise SkillboxError.from_envelope(env) from None
        except urllib.error.URLError as e:
            raise SkillboxError("unavailable", "cannot reach skillbox at %s: %s" % (self.url, e.reason)) from None
        if resp.headers.get_content_type() != "application/json":
            return raw.decode("utf-8")
        return json.loads(raw)

    @staticmethod
    def _path(skill_id):
        return "/v1/skills/" + "/".join(urllib.parse.quote(p, safe="") for p in skill_id.split("/"))

    def inspect(self, skill_id):
        """The skill's summary, manifest, instructions and card."""
        return self._request("GET", self._path(skill_id))

    def list(self):
        """The served skills."""
        return self._request("GET", "/v1/skills")["skills"]

    def schema(self, skill_id, format):
        """The tool definition `skillbox schema` gives for format."""
        return self._request("GET", self._path(skill_id) + "/schema?format=" + urllib.parse.quote(format))

    def call(self, skill_id, params):
        """Run one call; returns the success envelope or raises SkillboxError."""
        return _check(self._request("POST", self._path(skill_id) + "/call", params or {}))


class CLIClient:
    """Runs the ``skillbox`` command: ``binary`` and ``run_args`` (grants
    such as ``--allow-env NAME`` added to every ``run``)."""

    def __init__(self, binary="skillbox", run_args=(), env=None, timeout=None):
        self.binary = binary
        self.run_args = list(run_args)
        self.env = env
        self.timeout = timeout

    def _run(self, args, stdin=None):
        try:
            p = subprocess.run(
                [self.binary] + args,
                input=stdin,
                capture_output=True,
                env=self.env,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise SkillboxError(
                "unavailable", "skillbox binary %r not found (set SKILLBOX_BIN or SKILLBOX_URL)" % self.binary
            ) from None
        try:
            return json.loads(p.stdout)
        except ValueError:
            msg = p.stderr.decode("utf-8", "replace").strip() or "exit status %d" % p.returncode
            raise SkillboxError("internal", msg) from None

    def inspect(self, skill_id):
        env = self._run(["inspect", skill_id, "--json"])
        if isinstance(env, dict) and env.get("ok") is False:
            raise SkillboxError.from_envelope(env)
        return env

    def list(self):
        return self._run(["list", "--json"])["skills"]

    def call(self, skill_id, params):
        data = json.dumps(params or {}).encode("utf-8")
        return _check(self._run(["run", skill_id, "--json", "--params-file", "-"] + self.run_args, stdin=data))


def client_from_env(environ=None):
    """An HTTPClient when SKILLBOX_URL is set (token from SKILLBOX_TOKEN),
    else a CLIClient running SKILLBOX_BIN (default "skillbox") with the
    extra run arguments in SKILLBOX_RUN_ARGS (shell-quoted)."""
    environ = os.environ if environ is None else environ
    url = environ.get("SKILLBOX_URL")
    if url:
        return HTTPClient(url, environ.get("SKILLBOX_TOKEN"))
    return CLIClient(environ.get("SKILLBOX_BIN") or "skillbox", shlex.split(environ.get("SKILLBOX_RUN_ARGS", "")))
