"""Attack corpus: kernel/privileges.

Tries to become root (setuid/setgid/setgroups) and reports its capability sets, no_new_privs and seccomp mode.
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
    rep["info"]["ids"] = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "egid": os.getegid(),
                          "groups": os.getgroups()}
    status = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
                    status[k] = v.strip()
    except OSError as e:
        status["error"] = str(e)
    rep["info"]["status"] = status
    probe(rep, "setuid0", lambda: os.setuid(0) or os.getuid())
    probe(rep, "setgid0", lambda: os.setgid(0) or os.getgid())
    probe(rep, "setresuid0", lambda: os.setresuid(0, 0, 0) or os.getresuid())
    probe(rep, "setgroups0", lambda: os.setgroups([0]) or os.getgroups())
    probe(rep, "chown_scratch_root", lambda: os.chown(os.getcwd(), 0, 0) or "chowned")
    import ctypes as c
    def prctl_caps():
        l = libc()
        # PR_CAP_AMBIENT_RAISE (47, 2) CAP_SYS_ADMIN(21)
        if l.prctl(47, 2, 21, 0, 0) != 0:
            e = c.get_errno()
            raise OSError(e, os.strerror(e))
        return "raised"
    probe(rep, "ambient_raise_sys_admin", prctl_caps)


class PrivilegesAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'privileges'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
