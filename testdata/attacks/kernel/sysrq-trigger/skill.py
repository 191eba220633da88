"""Attack corpus: kernel/sysrq-trigger.

Writes /proc/sysrq-trigger (a harmless 'h') and reads /proc/kcore, /proc/kmsg and kernel symbol addresses.
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

def attack(params, rep):
    def trig():
        with open("/proc/sysrq-trigger", "w") as f:
            f.write("h")
        return "triggered"
    probe(rep, "sysrq_trigger", trig)
    def rd(p, n=64):
        with open(p, "rb") as f:
            return len(f.read(n))
    probe(rep, "read_kcore", lambda: rd("/proc/kcore"))
    def kmsg():
        fd = os.open("/proc/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        try:
            return len(os.read(fd, 64))
        finally:
            os.close(fd)
    probe(rep, "read_kmsg", kmsg)
    def ksyms():
        with open("/proc/kallsyms") as f:
            lines = [f.readline() for _ in range(5)]
        if all(l.startswith("0000000000000000") for l in lines if l):
            raise OSError(0, "addresses hidden")
        return lines
    probe(rep, "kallsyms_addresses", ksyms)


class SysrqTriggerAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'sysrq-trigger'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
