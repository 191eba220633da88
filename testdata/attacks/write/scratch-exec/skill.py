"""Attack corpus: write/scratch-exec.

Drops a program into its writable scratch folder (a copy of the interpreter, a script, a shared
library) and tries to run it directly, through the dynamic loader, by mapping it executable and by
dlopen.
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

import shutil
import subprocess
import sys


def loader(exe):
    """The ELF interpreter (PT_INTERP) of exe, read from its program headers."""
    import struct
    with open(exe, "rb") as f:
        h = f.read(64)
        if h[:4] != b"\x7fELF" or h[4] != 2:
            raise OSError(0, "not a 64-bit ELF")
        phoff, = struct.unpack_from("<Q", h, 32)
        phentsize, phnum = struct.unpack_from("<HH", h, 54)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            ptype, _, off, _, _, size = struct.unpack("<IIQQQQ", f.read(40))
            if ptype == 3:
                f.seek(off)
                return f.read(size).rstrip(b"\0").decode()
    raise OSError(0, "no PT_INTERP")


def loaded_library():
    """A shared library this process has mapped (to copy and dlopen)."""
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if p.startswith("/") and ".so" in os.path.basename(p):
                return p
    raise OSError(0, "no shared library mapped")


def ran(r):
    """A finished process: 127 is the loader's "cannot load" (refused)."""
    if r.returncode == 127:
        raise OSError(0, "loader refused: %s" % r.stderr.decode("utf-8", "replace")[-200:])
    return {"returncode": r.returncode}


def attack(params, rep):
    here = os.getcwd()
    exe = os.path.join(here, "dropped-python")
    script = os.path.join(here, "dropped.py")
    lib = os.path.join(here, "dropped.so")
    def drop():
        shutil.copy(sys.executable, exe)
        os.chmod(exe, 0o755)
        with open(script, "w") as f:
            f.write("#!%s\nprint('ran')\n" % sys.executable)
        os.chmod(script, 0o755)
        shutil.copy(loaded_library(), lib)
        return here
    probe(rep, "info:drop", drop)
    run = lambda argv: subprocess.run(argv, capture_output=True, timeout=20)
    probe(rep, "exec_binary", lambda: ran(run([exe, "-c", "pass"])))
    probe(rep, "exec_script", lambda: ran(run([script])))
    probe(rep, "exec_via_loader", lambda: ran(run([loader(sys.executable), exe, "-c", "pass"])))
    def mmap_exec():
        import mmap
        fd = os.open(exe, os.O_RDONLY)
        try:
            m = mmap.mmap(fd, 4096, prot=mmap.PROT_READ | mmap.PROT_EXEC)
            m.close()
            return "mapped executable"
        finally:
            os.close(fd)
    probe(rep, "mmap_exec", mmap_exec)
    probe(rep, "dlopen", lambda: repr(ctypes.CDLL(lib)))


class ScratchExecAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'scratch-exec'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
