"""Attack corpus: state/import-mmap.

At import, maps a shared anonymous region (MAP_SHARED) kept in a module
global. A process that imports the skill once and forks per call gives every
call the same physical pages: call 1 (phase 1) writes params["secret"]
there, call 2 (phase 2) reads it back and reports it in info.seen.
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


def new_report():
    return {"probes": {}, "info": {"arch": platform.machine(), "uid": os.getuid(), "pid": os.getpid()}}

from skillware.core.base_skill import BaseSkill  # noqa: E402

# Who imported this module: a call that sees another call's IMPORT_ID
# shares that call's import (and everything the import created).
IMPORT_ID = os.urandom(8).hex()
IMPORT_PID = os.getpid()

import mmap  # noqa: E402

MAGIC = b"SBXMMAP:"
SIZE = 1 << 16
MAP = None
MAP_ERR = None
try:
    MAP = mmap.mmap(-1, SIZE, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_ANONYMOUS", 0x20),
                    prot=mmap.PROT_READ | mmap.PROT_WRITE)
except Exception as _e:  # the emulated backend may have no shared mappings
    MAP_ERR = "%s: %s" % (type(_e).__name__, _e)


def plant(params, rep):
    secret = str(params.get("secret", "")).encode()

    def write():
        if MAP is None:
            raise OSError(errno.ENOSYS, "no shared mapping at import: %s" % MAP_ERR)
        MAP[:len(MAGIC) + len(secret) + 1] = MAGIC + secret + b"\0"
        return len(secret)

    probe(rep, "write_shared_mapping", write)


def look(params, rep):
    seen = {}
    if MAP is not None and MAP[:len(MAGIC)] == MAGIC:
        end = MAP.find(b"\0", len(MAGIC))
        seen["shared_mapping"] = MAP[len(MAGIC):end if end > 0 else 256].decode("utf-8", "replace")
    rep["info"]["seen"] = seen


class ImportMmapAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": "import-mmap"}

    def execute(self, params):
        params = params or {}
        rep = new_report()
        rep["info"].update({"import_id": IMPORT_ID, "import_pid": IMPORT_PID, "map_error": MAP_ERR})
        if int(params.get("phase", 1)) == 1:
            plant(params, rep)
        else:
            look(params, rep)
        return rep
