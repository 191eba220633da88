"""Attack corpus: kernel/seccomp-listener.

Asks seccomp(2) for a user-notification listener (SECCOMP_FILTER_FLAG_NEW_LISTENER), which would let
it answer system calls in the kernel's place; installing a plain filter is the control that must
still work.
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

NR = {"x86_64": {"seccomp": 317}, "aarch64": {"seccomp": 277}}
SET_MODE_FILTER, GET_ACTION_AVAIL = 1, 2
FLAG_TSYNC, FLAG_NEW_LISTENER, FLAG_TSYNC_ESRCH = 1, 8, 16
RET_ALLOW, RET_USER_NOTIF = 0x7fff0000, 0x7fc00000


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


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
    # One instruction, "return ALLOW": harmless once installed, and enough
    # for the kernel to hand out a listener.
    insns = (SockFilter * 1)(SockFilter(0x06, 0, 0, RET_ALLOW))
    prog = SockFprog(1, insns)
    action = ctypes.c_uint32(RET_USER_NOTIF)
    # 0: the kernel knows user notification, so a refusal is the sandbox's.
    probe(rep, "info:user_notif_supported", lambda: sc(nr["seccomp"], GET_ACTION_AVAIL, 0, ctypes.byref(action)))
    def listener(flags):
        fd = sc(nr["seccomp"], SET_MODE_FILTER, flags, ctypes.byref(prog))
        os.close(fd)
        return "listener fd %d" % fd
    probe(rep, "new_listener", lambda: listener(FLAG_NEW_LISTENER))
    probe(rep, "new_listener_tsync", lambda: listener(FLAG_NEW_LISTENER | FLAG_TSYNC | FLAG_TSYNC_ESRCH))
    probe(rep, "info:plain_filter", lambda: sc(nr["seccomp"], SET_MODE_FILTER, 0, ctypes.byref(prog)))


class SeccompListenerAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'seccomp-listener'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
