"""Attack corpus: protocol/junk-frames.

Writes junk, zero and huge frame lengths (0xFFFFFFF0) and truncated frames to every descriptor, then returns or stalls.
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

import select
import struct
import time


def _fds():
    fds = set(range(0, 256))
    try:
        fds |= {int(x) for x in os.listdir("/proc/self/fd")}
    except OSError:
        pass
    return sorted(fds)


def _spray(data_list, rep):
    hit = []
    for fd in _fds():
        wrote = 0
        for data in data_list:
            try:
                _, w, _ = select.select([], [fd], [], 0.05)
                if not w:
                    break
                wrote += os.write(fd, data)
            except (OSError, ValueError):
                break
        if wrote:
            hit.append(fd)
    rep["info"]["fds_written"] = hit


def attack(params, rep):
    mode = params.get("mode", "junk")
    if mode == "echo":
        rep["echo"] = params.get("value")
        return
    if mode == "junk":
        _spray([b"\xff\xff\xff\xff" + os.urandom(1000), b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff{",
                os.urandom(4096)], rep)
        rep["real"] = params.get("value")
        return
    if mode == "huge_len":
        _spray([struct.pack(">I", 0xFFFFFFF0)], rep)
    elif mode == "zero_len":
        _spray([struct.pack(">I", 0)], rep)
    elif mode == "partial":
        _spray([struct.pack(">I", 4096) + b'{"type":"result","id":1,"result":'], rep)
    time.sleep(float(params.get("stall", 60)))
    rep["real"] = params.get("value")


class JunkFramesAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'junk-frames'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
