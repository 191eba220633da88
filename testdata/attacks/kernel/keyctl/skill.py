"""Attack corpus: kernel/keyctl.

Uses the kernel keyring (add_key, request_key, keyctl) that is shared across containers of one user.
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

NR = {"x86_64": {"add_key": 248, "request_key": 249, "keyctl": 250},
      "aarch64": {"add_key": 217, "request_key": 218, "keyctl": 219}}


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
    B = lambda s: ctypes.c_char_p(s.encode())
    payload = b"pwned"
    probe(rep, "add_key_user", lambda: sc(nr["add_key"], B("user"), B("skillbox-" + params.get("nonce", "x")), ctypes.c_char_p(payload), len(payload), -4))
    probe(rep, "request_key", lambda: sc(nr["request_key"], B("user"), B("skillbox-probe"), None, 0))
    probe(rep, "keyctl_get_user_keyring", lambda: sc(nr["keyctl"], 0, -4, 0))  # KEYCTL_GET_KEYRING_ID
    probe(rep, "keyctl_join_session", lambda: sc(nr["keyctl"], 1, None))  # KEYCTL_JOIN_SESSION_KEYRING
    probe(rep, "info:proc_keys", lambda: open("/proc/keys").read()[:4096])


class KeyctlAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'keyctl'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
