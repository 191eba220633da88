"""Attack corpus: net/netlink-route.

Uses rtnetlink to add an address and a route to the loopback interface (must not touch the host's).
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


def _attr(t, data):
    l = 4 + len(data)
    return struct.pack("=HH", l, t) + data + b"\0" * ((4 - l % 4) % 4)


def _nl(sock, typ, flags, body):
    msg = struct.pack("=IHHII", 16 + len(body), typ, flags, 1, 0) + body
    sock.send(msg)
    data = sock.recv(65536)
    l, t = struct.unpack("=IH", data[:6])
    if t == 2:  # NLMSG_ERROR
        err = struct.unpack("=i", data[16:20])[0]
        if err != 0:
            raise OSError(-err, os.strerror(-err))
        return "acked"
    return "reply type %d" % t


def attack(params, rep):
    addr = params.get("net_addr", "198.18.77.77")
    route = params.get("net_route", "198.19.77.0")
    def open_sock():
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
        s.settimeout(2.0)
        s.bind((0, 0))
        return s
    holder = {}
    probe(rep, "info:socket", lambda: holder.setdefault("s", open_sock()) and "opened")
    s = holder.get("s")
    if s is None:
        return
    try:
        idx = socket.if_nametoindex("lo")
    except OSError:
        idx = 1
    rep["info"]["lo_index"] = idx
    # RTM_NEWADDR 198.18.x.y/32 on lo
    body = struct.pack("=BBBBI", socket.AF_INET, 32, 0, 0, idx)
    body += _attr(2, socket.inet_aton(addr)) + _attr(1, socket.inet_aton(addr))
    probe(rep, "netns:add_addr", lambda: _nl(s, 20, 1 | 4 | 0x400 | 0x200, body))
    # RTM_NEWROUTE 198.19.x.0/24 dev lo
    body = struct.pack("=BBBBBBBBI", socket.AF_INET, 24, 0, 0, 254, 3, 253, 1, 0)
    body += _attr(1, socket.inet_aton(route)) + _attr(4, struct.pack("=I", idx))
    probe(rep, "netns:add_route", lambda: _nl(s, 24, 1 | 4 | 0x400 | 0x200, body))
    s.close()
    def ifaces():
        return [n for _, n in socket.if_nameindex()]
    probe(rep, "info:interfaces", ifaces)


class NetlinkRouteAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'netlink-route'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
