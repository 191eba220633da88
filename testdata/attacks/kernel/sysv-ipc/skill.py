"""Attack corpus: kernel/sysv-ipc.

Creates and enumerates SysV shared memory, message queues and semaphores and a POSIX message queue
(objects that outlive the process); anything it manages to create it removes again.
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

NR = {"x86_64": {"shmget": 29, "shmctl": 31, "semget": 64, "semctl": 66, "semtimedop": 220, "msgget": 68,
                 "msgctl": 71, "mq_open": 240, "mq_unlink": 241},
      "aarch64": {"shmget": 194, "shmctl": 195, "semget": 190, "semctl": 191, "semtimedop": 192, "msgget": 186,
                  "msgctl": 187, "mq_open": 180, "mq_unlink": 181}}
IPC_PRIVATE, IPC_CREAT, IPC_RMID, IPC_INFO = 0, 0o1000, 0, 3


def made(rm, ident):
    """A created object: remove it at once, report that it existed."""
    try:
        rm(ident)
    except OSError:
        pass
    return "created %d" % ident


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
    key = 0x5b000000 | (int(params.get("nonce", "0")[:6] or "0", 16) & 0xffffff)
    buf = ctypes.create_string_buffer(512)
    rm_shm = lambda i: sc(nr["shmctl"], i, IPC_RMID, None)
    rm_msg = lambda i: sc(nr["msgctl"], i, IPC_RMID, None)
    rm_sem = lambda i: sc(nr["semctl"], i, 0, IPC_RMID)
    probe(rep, "shmget_private", lambda: made(rm_shm, sc(nr["shmget"], IPC_PRIVATE, 4096, IPC_CREAT | 0o600)))
    probe(rep, "shmget_key", lambda: made(rm_shm, sc(nr["shmget"], key, 4096, IPC_CREAT | 0o666)))
    probe(rep, "shmctl_info", lambda: sc(nr["shmctl"], 0, IPC_INFO, buf))
    probe(rep, "msgget_private", lambda: made(rm_msg, sc(nr["msgget"], IPC_PRIVATE, IPC_CREAT | 0o600)))
    probe(rep, "msgctl_info", lambda: sc(nr["msgctl"], 0, IPC_INFO, buf))
    probe(rep, "semget_private", lambda: made(rm_sem, sc(nr["semget"], IPC_PRIVATE, 1, IPC_CREAT | 0o600)))
    probe(rep, "semctl_info", lambda: sc(nr["semctl"], 0, 0, IPC_INFO, buf))
    probe(rep, "semtimedop", lambda: sc(nr["semtimedop"], -1, None, 0, None))
    name = ctypes.c_char_p(("skillbox-" + params.get("nonce", "x")).encode())
    def mq():
        fd = sc(nr["mq_open"], name, os.O_CREAT | os.O_RDWR, 0o600, None)
        os.close(fd)
        sc(nr["mq_unlink"], name)
        return "created"
    probe(rep, "mq_open", mq)
    rep["info"]["dev_shm"] = os.path.isdir("/dev/shm")
    def mp_lock():
        import multiprocessing
        return repr(multiprocessing.get_context("fork").Lock())
    probe(rep, "info:multiprocessing_lock", mp_lock)


class SysvIpcAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'sysv-ipc'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
