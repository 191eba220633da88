"""Attack corpus: kernel/ldt-memfd-exec.

Installs its own LDT segment (modify_ldt) and tries to run a program that is on no file system: a
memfd holding a copy of the interpreter, exec'd through /proc/self/fd, and execveat of a descriptor.
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

NR = {"x86_64": {"modify_ldt": 154, "memfd_create": 319, "execveat": 322},
      "aarch64": {"memfd_create": 279, "execveat": 281}}
AT_EMPTY_PATH = 0x1000


def ldt(nr, rep):
    # struct user_desc: entry 0, a 32-bit data segment, base 0, limit 0xfffff
    # pages (flags: seg_32bit | limit_in_pages | useable).
    desc = (ctypes.c_uint32 * 4)(0, 0, 0xfffff, 0x51)
    probe(rep, "modify_ldt_write", lambda: sc(nr["modify_ldt"], 1, ctypes.cast(desc, ctypes.c_void_p), 16))
    buf = ctypes.create_string_buffer(64)
    probe(rep, "modify_ldt_read", lambda: sc(nr["modify_ldt"], 0, buf, 64))


def memfd_exec(nr):
    """Copy the interpreter into a memfd and run it from there."""
    import subprocess
    fd = sc(nr["memfd_create"], ctypes.c_char_p(b"skillbox-payload"), 0)
    try:
        with open(sys.executable, "rb") as src:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                os.write(fd, chunk)
        path = "/proc/self/fd/%d" % fd
        r = subprocess.run([path, "-c", "pass"], pass_fds=(fd,), capture_output=True, timeout=20)
        return {"executed": path, "returncode": r.returncode}
    finally:
        os.close(fd)


def execveat_fd(nr):
    """execveat(fd, "", AT_EMPTY_PATH) of the interpreter in a child: exit 7
    means it ran; otherwise the exit code carries the errno."""
    fd = os.open(sys.executable, os.O_RDONLY)
    argv = (ctypes.c_char_p * 4)(sys.executable.encode(), b"-c", b"import os; os._exit(7)", None)
    envp = (ctypes.c_char_p * 1)(None)
    pid = os.fork()
    if pid == 0:
        try:
            sc(nr["execveat"], fd, ctypes.c_char_p(b""), argv, envp, AT_EMPTY_PATH)
        except OSError as e:
            os._exit(100 + (e.errno or 0) % 100)
        os._exit(99)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 7:
        return "executed"
    e = code - 100 if code >= 100 else 0
    raise OSError(e, os.strerror(e) if e else "exit %d" % code)


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
    if "modify_ldt" in nr:
        ldt(nr, rep)
    probe(rep, "memfd_create", lambda: os.close(sc(nr["memfd_create"], ctypes.c_char_p(b"x"), 0)) or "created")
    probe(rep, "memfd_exec", lambda: memfd_exec(nr))
    probe(rep, "execveat_fd", lambda: execveat_fd(nr))


class LdtMemfdExecAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'ldt-memfd-exec'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
