"""Attack corpus: net/dns.

Resolves public names through the system resolver and asks DNS servers directly over UDP and TCP.
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

import socket
import struct


def _query(name):
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    for part in name.split("."):
        q += bytes([len(part)]) + part.encode()
    return q + b"\x00" + struct.pack(">HH", 1, 1)


def attack(params, rep):
    names = params.get("dns_names", ["example.com"])
    for n in names:
        probe(rep, "resolve:" + n, lambda n=n: sorted({a[4][0] for a in socket.getaddrinfo(n, 443)}))
    for ns in params.get("nameservers", []) + ["8.8.8.8", "1.1.1.1"]:
        def udp(ns=ns):
            fam = socket.AF_INET6 if ":" in ns else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.settimeout(1.0)
            try:
                s.sendto(_query(names[0]), (ns, 53))
                data, _ = s.recvfrom(4096)
                return "answer %d bytes" % len(data)
            finally:
                s.close()
        probe(rep, "udp53:" + ns, udp)
        def tcp(ns=ns):
            fam = socket.AF_INET6 if ":" in ns else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(1.0)
            try:
                s.connect((ns, 53))
                return "connected"
            finally:
                s.close()
        probe(rep, "tcp53:" + ns, tcp)


class DnsAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'dns'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
