"""Attack corpus: kernel/chown-devices.

Changes what it can see but does not own: the device nodes in /dev (mode, owner, times, xattrs,
rename, new nodes), its bundle, the runtime and the root; and reports the ids it runs as.
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

import stat
import sys


def attack(params, rep):
    rep["info"]["ids"] = [os.getuid(), os.geteuid(), os.getgid(), os.getegid()]
    devs = {}
    for d in ("null", "zero", "random", "urandom", "full", "tty", "ptmx"):
        p = "/dev/" + d
        try:
            st = os.stat(p)
        except OSError:
            continue
        devs[d] = [st.st_mode, st.st_uid, st.st_gid]
        probe(rep, "chmod:" + p, lambda p=p: os.chmod(p, 0o777) or "changed")
        probe(rep, "chown:" + p, lambda p=p: os.chown(p, os.getuid(), os.getgid()) or "changed")
        probe(rep, "utime:" + p, lambda p=p: os.utime(p, (0, 0)) or "changed")
        probe(rep, "setxattr:" + p, lambda p=p: os.setxattr(p, "user.skillbox", b"1") or "set")
        probe(rep, "rename:" + p, lambda p=p: os.rename(p, p + ".old") or "renamed")
    rep["info"]["devices"] = devs
    probe(rep, "mknod:/dev/skillbox-mem", lambda: os.mknod("/dev/skillbox-mem", stat.S_IFCHR | 0o666, os.makedev(1, 1)) or "made")
    for p in (os.path.dirname(os.path.abspath(__file__)), sys.prefix, "/"):
        probe(rep, "chmod:" + p, lambda p=p: os.chmod(p, 0o777) or "changed")
        probe(rep, "chown:" + p, lambda p=p: os.chown(p, os.getuid(), os.getgid()) or "changed")


class ChownDevicesAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'chown-devices'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
