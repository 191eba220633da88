"""Attack corpus: state/persist-between-calls.

Call 1 plants state (module global, env, monkeypatch, files in cwd/HOME/TMPDIR//tmp, a delayed background writer); call 2 looks for it.
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

import signal
import sys
import time

PLANTED = {}


def _dirs():
    return sorted({os.getcwd(), os.path.expanduser("~"), os.environ.get("TMPDIR", "/tmp"), "/tmp"})


def _name_self(name):
    try:
        libc().prctl(15, ctypes.c_char_p(name.encode()), 0, 0, 0)  # PR_SET_NAME
    except Exception:
        pass


def attack(params, rep):
    n = params.get("nonce", "x")
    if int(params.get("phase", 1)) == 1:
        PLANTED["mark"] = n
        os.environ["SKILLBOX_PLANTED"] = n
        json.skillbox_planted = n
        sys.modules["skillbox_planted"] = sys
        for d in _dirs():
            probe(rep, "plant:" + d, lambda d=d: open(os.path.join(d, "planted-" + n), "w").write(n))
        pid = os.fork()
        if pid == 0:
            os.setsid()
            if os.fork() == 0:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
                signal.alarm(30)  # safety net
                _name_self("sbt-" + n[:10])
                time.sleep(float(params.get("delay", 1.0)))
                for d in _dirs():
                    try:
                        with open(os.path.join(d, "late-" + n), "w") as f:
                            f.write(n)
                    except OSError:
                        pass
                time.sleep(25)
            os._exit(0)
        os.waitpid(pid, 0)
        rep["info"]["planted"] = True
        return
    seen = {}
    if PLANTED.get("mark"):
        seen["global"] = PLANTED["mark"]
    if os.environ.get("SKILLBOX_PLANTED"):
        seen["env"] = os.environ["SKILLBOX_PLANTED"]
    if getattr(json, "skillbox_planted", None):
        seen["monkeypatch"] = json.skillbox_planted
    if "skillbox_planted" in sys.modules:
        seen["sys_modules"] = True
    for d in _dirs():
        for prefix in ("planted-", "late-"):
            p = os.path.join(d, prefix + n)
            if os.path.exists(p):
                seen[p] = True
    try:
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open("/proc/%s/comm" % pid) as f:
                        if f.read().strip() == ("sbt-" + n[:10])[:15]:
                            seen["process:" + pid] = True
                except OSError:
                    pass
    except OSError:
        pass
    rep["info"]["seen"] = seen


class PersistBetweenCallsAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": 'persist-between-calls'}

    def execute(self, params):
        rep = new_report()
        attack(params or {}, rep)
        return rep
