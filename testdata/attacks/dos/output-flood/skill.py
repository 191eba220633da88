"""Attack corpus: dos/output-flood.

Floods stdout and stderr with megabytes through print, sys.stdout.write and raw os.write, then returns normally.
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

import sys


def attack(params, rep):
    n = int(params.get("bytes", 8 << 20))
    line = "A" * 1023 + "\n"
    for _ in range(n // 1024 // 2):
        sys.stdout.write(line)
        sys.stderr.write(line)
    sys.stdout.flush()
    sys.stderr.flush()
    blob = b"B" * (1 << 20)
    for _ in range(n // len(blob) // 2):
        for fd in (1, 2):
            try:
                os.write(fd, blob)
            except OSError as e:
                rep["info"]["write_error"] = str(e)
    rep["info"]["done"] = True


class OutputFloodAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'output-flood'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
