"""Ways to reach skillbox: its HTTP API, or its command line."""

import collections
import json
import os
import shlex
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request


class SkillboxError(Exception):
    """A failed call or lookup.

    ``kind`` is skillbox's error kind (skill, invalid, not_found, denied,
    timeout, limit, unavailable, unsupported, internal); for a skill's own
    exception ``type`` and ``traceback`` come from Python inside the sandbox.
    ``stdout`` and ``stderr`` are what the skill printed before it failed
    ("" when nothing). ``envelope`` is the whole failure answer.
    """

    def __init__(self, kind, message, type=None, traceback=None, envelope=None):
        super().__init__("%s: %s" % (kind, message))
        self.kind = kind
        self.message = message
        self.type = type
        self.traceback = traceback
        self.envelope = envelope
        env = envelope if isinstance(envelope, dict) else {}
        self.stdout = env.get("stdout") or ""
        self.stderr = env.get("stderr") or ""

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
    such as ``--allow-env NAME`` added to every ``run``). A command still
    running after ``timeout`` seconds is sent SIGTERM (skillbox cancels
    its call and kills the sandbox), then SIGKILL if it has not exited
    within a few seconds; either way the call raises kind ``timeout``."""

    def __init__(self, binary="skillbox", run_args=(), env=None, timeout=None):
        self.binary = binary
        self.run_args = list(run_args)
        self.env = env
        self.timeout = timeout

    def _run(self, args, stdin=None):
        try:
            proc = subprocess.Popen(
                [self.binary] + args,
                stdin=subprocess.PIPE if stdin is not None else None,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.env,
            )
        except FileNotFoundError:
            raise _missing_binary(self.binary) from None
        what = " ".join(["skillbox"] + args[:1])
        try:
            out, err = proc.communicate(stdin, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            how = _stop(proc)
            raise SkillboxError("timeout", "no answer from %s within %gs; %s" % (what, self.timeout, how)) from None
        except BaseException:  # KeyboardInterrupt: the call ends with us
            _stop(proc)
            raise
        try:
            return json.loads(out)
        except ValueError:
            msg = err.decode("utf-8", "replace").strip() or "exit status %d" % proc.returncode
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


# How long a skillbox sent SIGTERM has to cancel its call, kill the sandbox
# and exit before it is killed.
_STOP_GRACE = 5.0


def _stop(proc):
    """End a skillbox command that ran too long, and say how it ended.

    SIGTERM first: skillbox then cancels its call and kills the sandbox.
    SIGKILL only when it has not exited within _STOP_GRACE: nothing of
    skillbox runs after that, and its sandbox dies with it (skillbox ties
    the sandbox's life to its own) but is not cleaned up after."""
    proc.terminate()
    try:
        proc.communicate(timeout=_STOP_GRACE)
        return "skillbox was stopped (SIGTERM), which cancelled the call"
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return "skillbox did not stop within %gs of SIGTERM and was killed (SIGKILL)" % _STOP_GRACE


def _missing_binary(binary):
    return SkillboxError("unavailable", "skillbox binary %r not found (set SKILLBOX_BIN or SKILLBOX_URL)" % binary)


# What each exit status of the skillbox command means (the README's table).
_EXIT_KINDS = {1: "skill", 2: "invalid", 3: "denied", 4: "limit", 5: "unavailable", 6: "internal", 130: "canceled"}
_MCP_VERSION = "2025-06-18"
_CALL_META = "dev.skillbox/call"
# How long the child may take to start and list its skills when the client
# has no timeout of its own.
_START_TIMEOUT = 120.0


class StdioClient(CLIClient):
    """Sends each call to one ``skillbox serve --stdio`` child, over MCP.

    The child is started at the first call with ``run_args`` (every flag of
    ``skillbox run`` but --json and --params: grants, --backend, --timeout,
    --locked) and the environment as it is then (``env``, or this process's),
    and lives until close(), the end of a ``with`` block or this process's
    exit. Every call still runs in a sandbox of its own, as under ``run``;
    what is paid once is skillbox's start, its catalogue and its jails'
    interpreter, so a call costs milliseconds instead of a ``skillbox run``
    process (docs/PERFORMANCE.md). Calls from several threads run at once.

    Differences from CLIClient: grants taken from the environment are read
    when the child starts, not per call; the child serves the skills its
    roots held when it started, and an id it does not serve (a skill added
    since, a folder path) goes through ``skillbox run`` instead. A child
    that died is started again by the next call; the calls it was running
    fail with kind ``unavailable``. ``timeout`` bounds each call (the call
    is cancelled in the child). inspect and list run the command line.
    """

    def __init__(self, binary="skillbox", run_args=(), env=None, timeout=None):
        super().__init__(binary, run_args, env, timeout)
        self._lock = threading.Lock()
        self._server = None

    def _serve(self):
        with self._lock:
            if self._server is not None and self._server.pid != os.getpid():
                # A forked copy of this client: the child and its pipes are
                # the parent's; this process gets its own.
                self._server = None
            if self._server is None or self._server.failure is not None:
                if self._server is not None:
                    self._server.close()
                    self._server = None
                argv = [self.binary, "serve", "--stdio", "--log-level", "warn"] + self.run_args
                self._server = _StdioServer(argv, self.env, self.timeout)
            return self._server

    def call(self, skill_id, params):
        server = self._serve()
        name = server.tools.get(skill_id)
        if name is None:
            return super().call(skill_id, params)
        res = server.request("tools/call", {"name": name, "arguments": params or {}}, self.timeout)
        content = res.get("content") if isinstance(res, dict) else None
        first = content[0] if isinstance(content, list) and content else {}
        if not isinstance(first, dict) or first.get("type") != "text":
            raise SkillboxError("internal", "unexpected answer from skillbox serve: %.200r" % (res,))
        try:
            value = json.loads(first["text"])
        except ValueError:
            raise SkillboxError("internal", "unexpected answer from skillbox serve: %.200r" % (res,)) from None
        if res.get("isError"):
            return _check(value)
        env = {"ok": True, "result": value}
        meta = (res.get("_meta") or {}).get(_CALL_META) or {}
        for k in ("skill", "backend", "duration_ms"):
            if k in meta:
                env[k] = meta[k]
        for k in ("warnings", "stdout", "stderr", "warm"):
            if meta.get(k):
                env[k] = meta[k]
        return env

    def close(self):
        """Stop the child, if one runs; a later call starts a new one."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Waiter:
    def __init__(self):
        self.done = threading.Event()
        self.message = None
        self.failure = None


class _StdioServer:
    """One ``skillbox serve --stdio`` child and its MCP session: requests go
    out under a lock; a reader thread hands each answer to its waiter."""

    def __init__(self, argv, env, timeout):
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
            )
        except FileNotFoundError:
            raise _missing_binary(argv[0]) from None
        self.pid = os.getpid()
        self.lock = threading.Lock()  # waiters, last_id, failure
        self.write_lock = threading.Lock()  # whole messages on stdin
        self.waiters = {}
        self.last_id = 0
        self.failure = None  # a SkillboxError once the child is gone
        self.stderr = collections.deque(maxlen=20)
        self.stderr_done = threading.Event()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        try:
            start = timeout or _START_TIMEOUT
            self.request("initialize", {
                "protocolVersion": _MCP_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "skillbox-python", "version": "0.1.0"},
            }, start)
            self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            self.tools = {}
            params = {}
            while True:
                page = self.request("tools/list", params, start)
                for t in page.get("tools") or []:
                    if t.get("title") and t.get("name"):
                        self.tools[t["title"]] = t["name"]
                if not page.get("nextCursor"):
                    break
                params = {"cursor": page["nextCursor"]}
        except BaseException:
            self.close()
            raise

    def request(self, method, params, timeout):
        w = _Waiter()
        with self.lock:
            if self.failure is not None:
                raise self.failure
            self.last_id += 1
            rid = self.last_id
            self.waiters[rid] = w
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        try:
            answered = w.done.wait(timeout)
        except BaseException:  # KeyboardInterrupt, say: the call must not run on
            self._abandon(rid, "the client was interrupted")
            raise
        if not answered:
            if self._abandon(rid, "the client's timeout passed"):
                raise SkillboxError(
                    "timeout", "no answer from skillbox serve within %gs; the call was cancelled" % timeout)
            w.done.wait()  # the answer came as the time ran out: the reader is handing it over
        if w.failure is not None:
            raise w.failure
        msg = w.message
        if "error" in msg:
            err = msg["error"] if isinstance(msg["error"], dict) else {}
            kind = "invalid" if err.get("code") == -32602 else "internal"
            raise SkillboxError(kind, "skillbox serve refused %s: %s" % (method, err.get("message", msg["error"])))
        return msg.get("result") or {}

    def _abandon(self, rid, reason):
        """Stop waiting for request rid and cancel it in the child. False if
        its answer has already been taken by the reader."""
        with self.lock:
            waiting = self.waiters.pop(rid, None) is not None
        if waiting:
            self._send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": rid, "reason": reason}})
        return waiting

    def _send(self, msg):
        line = (json.dumps(msg) + "\n").encode("utf-8")
        with self.write_lock:
            try:
                self.proc.stdin.write(line)
                self.proc.stdin.flush()
            except (OSError, ValueError):
                pass  # the reader sees the child go and fails every waiter

    def _read_stdout(self):
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            if "method" in msg:
                if "id" in msg:  # a request of the server's: only ping is known
                    answer = {"result": {}} if msg["method"] == "ping" else {
                        "error": {"code": -32601, "message": "method not found"}}
                    self._send(dict({"jsonrpc": "2.0", "id": msg["id"]}, **answer))
                continue  # notifications (progress, list changes) are not used
            with self.lock:
                w = self.waiters.pop(msg.get("id"), None)
            if w is not None:
                w.message = msg
                w.done.set()
        self.proc.stdout.close()
        self._gone()

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr.append(line.decode("utf-8", "replace").rstrip())
        self.proc.stderr.close()
        self.stderr_done.set()

    def _gone(self):
        """The child closed its output: fail every call in flight, and the
        ones to come (the client starts a new child for them)."""
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.stderr_done.wait(5)
        said = " ".join(line for line in self.stderr if line)
        kind = _EXIT_KINDS.get(code, "unavailable") if code != 0 and said else "unavailable"
        failure = SkillboxError(kind, "skillbox serve --stdio exited (status %d)%s" % (code, ": " + said if said else ""))
        with self.lock:
            self.failure = failure
            waiters, self.waiters = self.waiters, {}
        for w in waiters.values():
            w.failure = failure
            w.done.set()

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def client_from_env(environ=None):
    """An HTTPClient when SKILLBOX_URL is set (token from SKILLBOX_TOKEN),
    else a client of SKILLBOX_BIN (default "skillbox") with the extra run
    arguments in SKILLBOX_RUN_ARGS (shell-quoted): a StdioClient (one
    ``skillbox serve --stdio`` for every call) when SKILLBOX_STDIO is 1,
    else a CLIClient (``skillbox run`` per call)."""
    environ = os.environ if environ is None else environ
    url = environ.get("SKILLBOX_URL")
    if url:
        return HTTPClient(url, environ.get("SKILLBOX_TOKEN"))
    cls = StdioClient if environ.get("SKILLBOX_STDIO") == "1" else CLIClient
    return cls(environ.get("SKILLBOX_BIN") or "skillbox", shlex.split(environ.get("SKILLBOX_RUN_ARGS", "")))
