"""Attack corpus: secrets/inherited-fds.

Scans every descriptor 0..1024 it may have inherited from the caller and reads what it can.
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
import socket
import stat


def attack(params, rep):
    links = {}
    try:
        for fd in os.listdir("/proc/self/fd"):
            try:
                links[fd] = os.readlink("/proc/self/fd/" + fd)
            except OSError as e:
                links[fd] = "?" + str(e)
    except OSError as e:
        rep["info"]["listdir_fd"] = str(e)
    rep["info"]["fd_links"] = links
    open_fds = []
    for fd in range(0, 1025):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        open_fds.append(fd)
        kind = "reg" if stat.S_ISREG(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode) else \
            "fifo" if stat.S_ISFIFO(st.st_mode) else "sock" if stat.S_ISSOCK(st.st_mode) else \
            "chr" if stat.S_ISCHR(st.st_mode) else "other"

        def rd(fd=fd, kind=kind):
            if kind == "reg":
                return os.pread(fd, 65536, 0).decode("utf-8", "replace")
            if kind == "dir":
                return sorted(os.listdir(fd))[:200]
            if kind == "sock":
                s = socket.socket(fileno=os.dup(fd))
                try:
                    info = {"family": int(s.family), "type": int(s.type)}
                    try:
                        info["name"] = str(s.getsockname())
                        info["peer"] = str(s.getpeername())
                    except OSError:
                        pass
                    s.setblocking(False)
                    try:
                        info["data"] = s.recv(65536).decode("utf-8", "replace")
                    except OSError as e:
                        info["recv"] = str(e)
                    return info
                finally:
                    s.close()
            r, _, _ = select.select([fd], [], [], 0)
            if not r:
                return "(not readable)"
            return os.read(fd, 65536).decode("utf-8", "replace")
        probe(rep, "fd:%d:%s" % (fd, kind), rd)
    rep["info"]["open_fds"] = open_fds


class InheritedFdsAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'inherited-fds'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
