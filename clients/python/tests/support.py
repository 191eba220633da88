"""Shared test setup: a skillbox binary, a test environment, a server."""

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TEST_SKILLS = os.path.join(REPO, "internal", "server", "testdata", "skills")
BACKEND = os.environ.get("SKILLBOX_TEST_BACKEND", "process")
RUN_ARGS = ["--backend", BACKEND, "--trust-remote-code"]

_tmp = tempfile.mkdtemp(prefix="skillbox-pytest-")
atexit.register(shutil.rmtree, _tmp, True)
_bin = None


def binary():
    """SKILLBOX_BIN, or a skillbox built from this checkout; skips the test
    when neither is possible."""
    global _bin
    if _bin:
        return _bin
    if os.environ.get("SKILLBOX_BIN"):
        _bin = os.environ["SKILLBOX_BIN"]
        return _bin
    if not shutil.which("go"):
        raise unittest.SkipTest("no SKILLBOX_BIN and no go to build skillbox with")
    out = os.path.join(_tmp, "skillbox")
    subprocess.run(["go", "build", "-o", out, "./cmd/skillbox"], cwd=REPO, check=True,
                   env=dict(os.environ, CGO_ENABLED="0"))
    _bin = out
    return _bin


def env(**extra):
    """The environment skillbox runs in: the test skills root, and caches
    and the audit log in a temporary folder."""
    e = dict(os.environ)
    for k in ("SKILLBOX_URL", "SKILLBOX_TOKEN", "SKILLBOX_RUN_ARGS"):
        e.pop(k, None)
    e.update(
        SKILLWARE_SKILL_PATH=TEST_SKILLS,
        XDG_CACHE_HOME=os.path.join(_tmp, "cache"),
        XDG_STATE_HOME=os.path.join(_tmp, "state"),
    )
    e.update(extra)
    return e


class Server:
    """`skillbox serve --http 127.0.0.1:0` in a subprocess."""

    def __init__(self, token=None):
        args = [binary(), "serve", "--http", "127.0.0.1:0", "--log-format", "json"] + RUN_ARGS
        if token:
            args += ["--token", token]
        self.proc = subprocess.Popen(args, env=env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=_tmp)
        self.url = None
        for line in self.proc.stderr:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("msg") == "serving HTTP":
                self.url = "http://" + rec["addr"]
                break
        if not self.url:
            self.proc.kill()
            raise RuntimeError("skillbox serve did not start: %s" % self.proc.stderr.read())

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        finally:
            self.proc.stderr.close()
