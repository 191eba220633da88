"""Attack corpus: kernel/io-uring.

Sets up io_uring, whose operations bypass syscall filtering and have a long exploit history.
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

NR = {"x86_64": {"setup": 425, "enter": 426, "register": 427}, "aarch64": {"setup": 425, "enter": 426, "register": 427}}


def attack(params, rep):
    nr = NR.get(platform.machine())
    if nr is None:
        rep["info"]["skipped"] = "unsupported arch " + platform.machine()
        return
    try:
        libc()
    except Exception as e:
        rep["info"]["skipped"] = "ctypes unavailable: %s" % e
        return
    p = (ctypes.c_uint8 * 120)()
    def setup():
        fd = sc(nr["setup"], 8, ctypes.cast(p, ctypes.c_void_p))
        os.close(fd)
        return fd
    probe(rep, "io_uring_setup", setup)
    # With a bad fd: EBADF means the call reached the kernel, EPERM/ENOSYS that it was filtered.
    probe(rep, "info:io_uring_enter_badfd", lambda: sc(nr["enter"], 999, 0, 0, 0, None, 0))


class IoUringAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'io-uring'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
