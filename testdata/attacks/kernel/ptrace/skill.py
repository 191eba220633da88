"""Attack corpus: kernel/ptrace.

Uses ptrace (attach, seize, traceme), process_vm_readv and /proc/<pid>/mem on its parent, pid 1 and a child.
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
import time

PTRACE_TRACEME, PTRACE_ATTACH, PTRACE_SEIZE = 0, 16, 0x4206
NR = {"x86_64": {"ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311},
      "aarch64": {"ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271}}


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
    child = os.fork()
    if child == 0:
        time.sleep(30)
        os._exit(0)
    try:
        probe(rep, "ptrace_attach_child", lambda: sc(nr["ptrace"], PTRACE_ATTACH, child, 0, 0))
        probe(rep, "ptrace_seize_child", lambda: sc(nr["ptrace"], PTRACE_SEIZE, child, 0, 0))
        probe(rep, "ptrace_attach_parent", lambda: sc(nr["ptrace"], PTRACE_ATTACH, os.getppid(), 0, 0))
        probe(rep, "ptrace_attach_pid1", lambda: sc(nr["ptrace"], PTRACE_ATTACH, 1, 0, 0))
        buf = ctypes.create_string_buffer(64)
        local = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 64)
        def vm_read(pid):
            with open("/proc/%d/maps" % pid) as f:
                start = int(f.readline().split("-")[0], 16)
            remote = (ctypes.c_void_p * 2)(start, 64)
            return sc(nr["process_vm_readv"], pid, ctypes.cast(local, ctypes.c_void_p), 1, ctypes.cast(remote, ctypes.c_void_p), 1, 0)
        probe(rep, "process_vm_readv_child", lambda: vm_read(child))
        probe(rep, "process_vm_readv_pid1", lambda: vm_read(1))
        def mem(pid):
            with open("/proc/%d/maps" % pid) as f:
                start = int(f.readline().split("-")[0], 16)
            fd = os.open("/proc/%d/mem" % pid, os.O_RDWR)
            try:
                return len(os.pread(fd, 16, start))
            finally:
                os.close(fd)
        probe(rep, "proc_mem_pid1", lambda: mem(1))
        probe(rep, "proc_mem_parent", lambda: mem(os.getppid()))
        r, w = os.pipe()
        p = os.fork()
        if p == 0:
            try:
                sc(nr["ptrace"], PTRACE_TRACEME, 0, 0, 0)
                os.write(w, b"ok")
            except OSError as e:
                os.write(w, ("err %d" % e.errno).encode())
            os._exit(0)
        os.close(w)
        out = os.read(r, 64).decode()
        os.close(r)
        os.waitpid(p, 0)
        rep["probes"]["ptrace_traceme"] = {"ok": out == "ok", "data": out} if out == "ok" else {"ok": False, "err": out}
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


class PtraceAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'ptrace'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
