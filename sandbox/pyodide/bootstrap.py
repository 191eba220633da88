# skillbox Pyodide bootstrap. Run once, while the memory snapshot is made:
# it imports the worker harness (internal/worker/harness.py, as module
# skillbox_harness; its main only runs as __main__) and defines module
# skillbox_pyodide, which the worker script drives. Every call runs in a
# fresh worker restored from the snapshot, so nothing here persists between
# calls. The harness's own semantics (BaseSkill shim, skill discovery,
# results, errors) are reused, not re-implemented.
import sys
import types


def _module(name, source, filename):
    mod = types.ModuleType(name)
    mod.__file__ = filename
    sys.modules[name] = mod
    exec(compile(source, filename, "exec"), mod.__dict__)
    return mod


harness = _module("skillbox_harness", _skillbox_harness_src, "<skillbox-harness>")  # noqa: F821

# What the harness and a typical skill import, so restoring the snapshot
# costs nothing at call time.
import abc  # noqa: E402,F401
import asyncio  # noqa: E402,F401
import importlib.metadata  # noqa: E402,F401
import importlib.util  # noqa: E402,F401
import inspect  # noqa: E402,F401
import json  # noqa: E402,F401
import platform  # noqa: E402,F401
import re  # noqa: E402,F401
import traceback  # noqa: E402,F401

_SRC = r'''
import json
import os
import sys

import skillbox_harness as H

_state = {"cls": None, "max_tb": 8192}


def _flush():
    H._flush_stdio()


def _host_exit(code):
    import _skillbox_host

    _flush()
    _skillbox_host.exit(int(code))


def _exit(code):
    """os._exit: the worker process is the skill's process; end it."""
    _host_exit(code)


def _kill(pid, sig, _orig=os.kill):
    """os.kill on the worker itself ends it (128+signal), as a signal would."""
    if pid in (0, os.getpid()):
        _host_exit(128 + int(sig))
    return _orig(pid, sig)


def prepare(env_json, scratch, site_dir=""):
    """Environment, working directory, the skill's environment's packages
    (site_dir: a site directory, after the standard library, as a virtual
    environment's site-packages) and process emulation, before init."""
    env = json.loads(env_json)
    os.environ.clear()
    os.environ.update(env)
    os.makedirs(scratch, exist_ok=True)
    os.chdir(scratch)
    # Like `python -I`: the working directory is not on sys.path.
    while "" in sys.path:
        sys.path.remove("")
    if site_dir:
        import site

        site.addsitedir(site_dir)
    os._exit = _exit
    os.kill = _kill
    # Emscripten's os has getuid (the worker answers 65534) but no geteuid
    # or getegid, and a getgid of 0: give skills one consistent,
    # unprivileged identity (nobody/nogroup), as the linux jail does.
    uid = os.getuid()
    for name, v in (("geteuid", uid), ("getgid", 65534), ("getegid", 65534)):
        setattr(os, name, lambda v=v: v)
    if not hasattr(os, "getgroups"):
        os.getgroups = lambda: []


def init(text):
    """Answer the init frame as the harness's _main does (minus descriptors).
    Returns (ok, reply frame bytes, single mode)."""
    msg = json.loads(text)
    if not isinstance(msg, dict) or msg.get("type") != "init":
        raise ValueError("expected an init frame")
    mode = msg.get("mode") or "single"
    if mode not in ("single", "session"):
        raise ValueError("unknown mode %r" % mode)
    cls, reply, max_tb = H._load(msg)
    _state["max_tb"] = max_tb
    if cls is None:
        return False, H._encode(reply), True
    _state["cls"] = cls
    return True, H._encode(reply), mode == "single"


def call(text):
    """Run one call frame; returns the reply frame bytes."""
    msg = json.loads(text)
    if not isinstance(msg, dict) or msg.get("type") != "call":
        raise ValueError("expected a call frame")
    return H._run_call(_state["cls"], msg, _state["max_tb"])
'''

_module("skillbox_pyodide", _SRC, "<skillbox-pyodide>")
del _module, _SRC
