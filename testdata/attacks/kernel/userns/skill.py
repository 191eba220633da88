"""Attack corpus: kernel/userns.

Creates new namespaces (unshare user/mount/net/pid, clone and clone3 with CLONE_NEWUSER) and joins others' (setns).
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

import signal

NR = {"x86_64": {"unshare": 272, "setns": 308, "clone": 56, "clone3": 435},
      "aarch64": {"unshare": 97, "setns": 268, "clone": 220, "clone3": 435}}
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP = \
    0x10000000, 0x00020000, 0x40000000, 0x20000000, 0x04000000, 0x08000000, 0x02000000


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
    rep["info"]["os_unshare"] = hasattr(os, "unshare")
    # Each unshare runs in a throwaway child so a success does not change this process.
    def in_child(fn):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                fn()
                os.write(w, b"ok")
            except OSError as e:
                os.write(w, ("errno %d" % e.errno).encode())
            except Exception as e:
                os.write(w, ("error %s" % e).encode())
            os._exit(0)
        os.close(w)
        out = os.read(r, 128).decode()
        os.close(r)
        os.waitpid(pid, 0)
        if out != "ok":
            raise OSError(int(out.split()[1]) if out.startswith("errno") else 0, out)
        return "succeeded"
    for name, flag in [("user", CLONE_NEWUSER), ("mount", CLONE_NEWNS), ("net", CLONE_NEWNET),
                       ("pid", CLONE_NEWPID), ("uts", CLONE_NEWUTS), ("ipc", CLONE_NEWIPC),
                       ("cgroup", CLONE_NEWCGROUP)]:
        probe(rep, "unshare_" + name, lambda flag=flag: in_child(lambda: sc(nr["unshare"], flag)))
    if hasattr(os, "unshare"):
        probe(rep, "os_unshare_user", lambda: in_child(lambda: os.unshare(CLONE_NEWUSER)))
    def setns(ns):
        fd = os.open("/proc/1/ns/" + ns, os.O_RDONLY)
        try:
            return in_child(lambda: sc(nr["setns"], fd, 0))
        finally:
            os.close(fd)
    for ns in ["mnt", "net", "user", "pid"]:
        probe(rep, "setns_pid1_" + ns, lambda ns=ns: setns(ns))
    def raw_clone():
        pid = sc(nr["clone"], CLONE_NEWUSER | signal.SIGCHLD, 0, 0, 0, 0)
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        return pid
    probe(rep, "clone_newuser", raw_clone)
    def clone3():
        args = (ctypes.c_uint64 * 11)()
        args[0] = CLONE_NEWUSER  # flags
        args[4] = signal.SIGCHLD  # exit_signal
        pid = sc(nr["clone3"], ctypes.cast(args, ctypes.c_void_p), 88)
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        return pid
    probe(rep, "clone3_newuser", clone3)


class UsernsAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'userns'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
