"""Attack corpus: kernel/bpf.

Calls bpf() to create a map and load a socket-filter program (a common kernel exploit vector).
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

NR = {"x86_64": 321, "aarch64": 280}


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
    attr = (ctypes.c_uint32 * 32)()
    attr[0], attr[1], attr[2], attr[3] = 2, 4, 8, 16  # BPF_MAP_TYPE_ARRAY, key 4, value 8, 16 entries
    probe(rep, "bpf_map_create", lambda: sc(nr, 0, ctypes.cast(attr, ctypes.c_void_p), 128))
    insns = (ctypes.c_uint64 * 2)(0x00000000000000b7, 0x0000000000000095)  # r0 = 0; exit
    lic = ctypes.c_char_p(b"GPL")
    pattr = (ctypes.c_uint64 * 16)()
    pattr[0] = 1 | (2 << 32)  # prog_type SOCKET_FILTER, insn_cnt 2
    pattr[1] = ctypes.cast(insns, ctypes.c_void_p).value
    pattr[2] = ctypes.cast(lic, ctypes.c_void_p).value
    probe(rep, "bpf_prog_load", lambda: sc(nr, 5, ctypes.cast(pattr, ctypes.c_void_p), 128))


class BpfAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'bpf'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
