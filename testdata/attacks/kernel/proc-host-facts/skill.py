"""Attack corpus: kernel/proc-host-facts.

Reads host facts from /proc (kernel command line and config, symbols, memory, CPUs, modules,
devices, the host's mounts) and the mount tables of every process it can see, which name the host
folders a sandbox binds (the bundle's, a cache folder's).
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

FACTS = ["cmdline", "config.gz", "kallsyms", "meminfo", "cpuinfo", "version", "modules", "mounts", "partitions",
         "swaps", "filesystems", "stat", "uptime", "loadavg", "iomem", "interrupts", "slabinfo", "zoneinfo",
         "vmallocinfo", "buddyinfo", "diskstats", "devices", "cgroups", "keys", "key-users", "sysvipc/shm",
         "net/dev", "sys/kernel/hostname", "sys/kernel/osrelease", "sys/fs/binfmt_misc/status", "driver/rtc",
         "bootconfig", "timer_list", "sched_debug"]


def read(path):
    with open(path, "rb") as f:
        return f.read(65536).decode("utf-8", "replace")


def attack(params, rep):
    for name in FACTS:
        probe(rep, "read:/proc/" + name, lambda p="/proc/" + name: read(p))
    probe(rep, "info:proc_entries", lambda: sorted(n for n in os.listdir("/proc") if not n.isdigit()))
    tables = {}
    try:
        pids = ["self"] + sorted(n for n in os.listdir("/proc") if n.isdigit())
    except OSError:
        pids = ["self"]
    for pid in pids:
        for t in ("mountinfo", "mounts", "mountstats"):
            try:
                tables["%s/%s" % (pid, t)] = read("/proc/%s/%s" % (pid, t))
            except OSError as e:
                tables["%s/%s" % (pid, t)] = "ERR " + _errname(e)
    rep["info"]["mount_tables"] = tables


class ProcHostFactsAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'proc-host-facts'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
