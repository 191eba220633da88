"""Attack corpus: kernel/proc-sys-write.

Writes kernel tunables under /proc/sys (core_pattern, modprobe, hostname, ...), writing back the current value.
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

def _rewrite(p, value=None):
    with open(p, "r") as f:
        cur = f.read()
    with open(p, "w") as f:
        f.write(cur if value is None else value)
    return "written"


def attack(params, rep):
    for p in ["/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe", "/proc/sys/kernel/panic",
              "/proc/sys/vm/overcommit_memory", "/proc/sys/kernel/randomize_va_space",
              "/proc/sys/fs/suid_dumpable", "/proc/sys/kernel/ns_last_pid", "/proc/sys/kernel/sysrq"]:
        probe(rep, "write:" + p, lambda p=p: _rewrite(p))
    # UTS-namespaced: contained if the host's hostname is unchanged.
    probe(rep, "info:hostname", lambda: _rewrite("/proc/sys/kernel/hostname", "pwn-" + params.get("nonce", "x")[:8]))
    probe(rep, "info:ip_forward", lambda: _rewrite("/proc/sys/net/ipv4/ip_forward"))


class ProcSysWriteAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'proc-sys-write'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
