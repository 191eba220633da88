"""Attack corpus: kernel/mount.

Mounts filesystems (tmpfs, proc, bind of /, remount, new mount API), unmounts /proc, pivot_root and chroot.
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

NR = {"x86_64": {"mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "open_tree": 428,
                 "move_mount": 429, "fsopen": 430, "fsmount": 432, "mount_setattr": 442},
      "aarch64": {"mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "open_tree": 428,
                  "move_mount": 429, "fsopen": 430, "fsmount": 432, "mount_setattr": 442}}
MS_BIND, MS_REMOUNT, MS_RDONLY, MS_REC = 4096, 32, 1, 16384


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
    base = os.path.join(os.getcwd(), "mnt-" + params.get("nonce", "x"))
    for d in ["a", "b", "c"]:
        try:
            os.makedirs(os.path.join(base, d), exist_ok=True)
        except OSError:
            pass
    B = lambda s: ctypes.c_char_p(s.encode())
    a, b, c = (os.path.join(base, x) for x in "abc")
    probe(rep, "mount_tmpfs", lambda: sc(nr["mount"], B("none"), B(a), B("tmpfs"), 0, None))
    probe(rep, "mount_proc", lambda: sc(nr["mount"], B("proc"), B(b), B("proc"), 0, None))
    probe(rep, "mount_bind_root", lambda: sc(nr["mount"], B("/"), B(c), None, MS_BIND | MS_REC, None))
    probe(rep, "remount_root_rw", lambda: sc(nr["mount"], None, B("/"), None, MS_REMOUNT | MS_BIND, None))
    probe(rep, "mount_cgroup", lambda: sc(nr["mount"], B("cgroup"), B(a), B("cgroup"), 0, B("memory")))
    probe(rep, "umount_proc", lambda: sc(nr["umount2"], B("/proc"), 2))
    probe(rep, "pivot_root", lambda: sc(nr["pivot_root"], B(base), B(a)))
    probe(rep, "chroot", lambda: sc(nr["chroot"], B(base)))
    probe(rep, "fsopen_tmpfs", lambda: sc(nr["fsopen"], B("tmpfs"), 0))
    probe(rep, "open_tree_root", lambda: sc(nr["open_tree"], -100, B("/"), 1 | 0x80000))  # OPEN_TREE_CLONE|O_CLOEXEC
    rep["info"]["mount_cmd"] = os.system("mount -t tmpfs none %s >/dev/null 2>&1" % a)


class MountAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'mount'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
