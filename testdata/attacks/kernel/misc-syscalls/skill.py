"""Attack corpus: kernel/misc-syscalls.

Probes dangerous syscalls: perf_event_open, userfaultfd, open_by_handle_at, modules, kexec, reboot, swap, acct, personality, syslog, clock_settime, mknod, x32 ABI.
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
import time

NR = {"x86_64": {"perf_event_open": 298, "userfaultfd": 323, "open_by_handle_at": 304, "init_module": 175,
                 "finit_module": 313, "delete_module": 176, "kexec_load": 246, "kexec_file_load": 320,
                 "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163, "personality": 135, "syslog": 103,
                 "clock_settime": 227, "getpid": 39}}


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
    attr = (ctypes.c_uint8 * 128)()
    ctypes.c_uint32.from_buffer(attr, 4).value = 128  # size; type 0 = PERF_TYPE_HARDWARE, config 0 = cycles
    probe(rep, "perf_event_open", lambda: sc(nr["perf_event_open"], ctypes.cast(attr, ctypes.c_void_p), 0, -1, -1, 0))
    probe(rep, "userfaultfd", lambda: sc(nr["userfaultfd"], 0))
    # "shocker": open_by_handle_at with a guessed root inode handle escapes bind mounts.
    h = (ctypes.c_uint8 * 16)()
    ctypes.c_uint32.from_buffer(h, 0).value = 8
    ctypes.c_int32.from_buffer(h, 4).value = 1
    ctypes.c_uint64.from_buffer(h, 8).value = 2
    def obh():
        fd = os.open("/", os.O_RDONLY)
        try:
            return sc(nr["open_by_handle_at"], fd, ctypes.cast(h, ctypes.c_void_p), 0)
        finally:
            os.close(fd)
    probe(rep, "open_by_handle_at", obh)
    probe(rep, "init_module", lambda: sc(nr["init_module"], None, 0, B("")))
    probe(rep, "finit_module", lambda: sc(nr["finit_module"], -1, B(""), 0))
    probe(rep, "delete_module", lambda: sc(nr["delete_module"], B("skillbox_nonexistent"), 0))
    # Invalid flags: EINVAL would mean the capability check passed; contained means EPERM/ENOSYS.
    probe(rep, "kexec_load", lambda: sc(nr["kexec_load"], 0, 0, None, 0x7fff0000))
    probe(rep, "kexec_file_load", lambda: sc(nr["kexec_file_load"], -1, -1, 0, None, 0x7fffffff))
    probe(rep, "reboot_badmagic", lambda: sc(nr["reboot"], 0xfee1dead, 0x1234, 0x4321fedc, None))
    probe(rep, "swapon", lambda: sc(nr["swapon"], B("/nonexistent-swap"), 0))
    probe(rep, "swapoff", lambda: sc(nr["swapoff"], B("/nonexistent-swap")))
    probe(rep, "acct", lambda: sc(nr["acct"], B("/nonexistent-acct")))
    def pers():
        before = sc(nr["personality"], 0xffffffff)
        sc(nr["personality"], before | 0x0400000)  # READ_IMPLIES_EXEC
        after = sc(nr["personality"], 0xffffffff)
        if after == before:
            raise OSError(0, "personality unchanged")
        return after
    probe(rep, "personality_change", pers)
    buf = ctypes.create_string_buffer(4096)
    probe(rep, "syslog_read_all", lambda: sc(nr["syslog"], 3, buf, 4096))
    def settime():
        ts = (ctypes.c_long * 2)()
        now = time.time()
        ts[0], ts[1] = int(now), int((now % 1) * 1e9)
        return sc(nr["clock_settime"], 0, ctypes.cast(ts, ctypes.c_void_p))
    probe(rep, "clock_settime", settime)
    probe(rep, "x32_getpid", lambda: sc(0x40000000 | 39))
    probe(rep, "mknod_mem", lambda: os.mknod(os.path.join(os.getcwd(), "mem"), stat.S_IFCHR | 0o600, os.makedev(1, 1)))
    for dev in ["/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/sda", "/dev/vda", "/dev/nvme0n1"]:
        probe(rep, "open:" + dev, lambda dev=dev: os.close(os.open(dev, os.O_RDONLY)) or "opened")


class MiscSyscallsAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'misc-syscalls'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
