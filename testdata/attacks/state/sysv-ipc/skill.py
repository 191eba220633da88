"""Attack corpus: state/sysv-ipc.

IPC objects live in the IPC namespace, not in a process: call 1 (phase 1)
creates SysV shared memory, a message queue and a semaphore under a fixed
key and under IPC_PRIVATE, and a POSIX message queue, each holding
params["secret"] (Python's standard library has no SysV API: ctypes on
libc). Call 2 (phase 2) looks for them by key and name and by enumerating
(/proc/sysvipc and the *_STAT commands), and reports what it finds in
info.seen. A refused creation is reported with its errno (contained).
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

KEY = 0x53425831  # "SBX1": call 2 finds the objects without call 1's params
MQ_NAME = b"/sbxleft-mq"
IPC_CREAT, IPC_EXCL, IPC_NOWAIT, IPC_PRIVATE, IPC_RMID = 0o1000, 0o2000, 0o4000, 0, 0
SHM_RDONLY = 0o10000
MSG_STAT, SHM_STAT, SEM_STAT = 11, 13, 18
SETVAL, GETVAL = 16, 12
SEM_MARK = 4242  # a semaphore carries a number, not the secret
MSG_NOERROR = 0o10000
O_RDONLY, O_RDWR, O_CREAT, O_NONBLOCK = 0, 2, 0o100, 0o4000


def _check(r, fail=-1):
    if r == fail:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def _fn(name, restype, *argtypes):
    f = getattr(libc(), name)  # AttributeError where libc lacks it (emulated)
    f.restype, f.argtypes = restype, list(argtypes)
    return f


def _rt(name, restype, *argtypes):
    """mq_* are in libc since glibc 2.34, in librt before."""
    for lib in (None, "librt.so.1"):
        try:
            f = getattr(libc() if lib is None else ctypes.CDLL(lib, use_errno=True), name)
            f.restype, f.argtypes = restype, list(argtypes)
            return f
        except (AttributeError, OSError):
            continue
    raise OSError(errno.ENOSYS, "%s not found in libc or librt" % name)


def shmget(key, size, flags):
    return _check(_fn("shmget", ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_int)(key, size, flags))


def shmat(shmid, flags):
    addr = _fn("shmat", ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int)(shmid, None, flags)
    if addr is None or addr == ctypes.c_void_p(-1).value:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return addr


def shmdt(addr):
    _fn("shmdt", ctypes.c_int, ctypes.c_void_p)(addr)


def msgget(key, flags):
    return _check(_fn("msgget", ctypes.c_int, ctypes.c_int, ctypes.c_int)(key, flags))


class MsgBuf(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 512)]


def msgsnd(qid, data):
    b = MsgBuf(1, data[:512])
    f = _fn("msgsnd", ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    return _check(f(qid, ctypes.byref(b), len(data[:512]), IPC_NOWAIT))


def msgrcv(qid):
    b = MsgBuf()
    f = _fn("msgrcv", ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long, ctypes.c_int)
    n = _check(f(qid, ctypes.byref(b), 512, 0, IPC_NOWAIT | MSG_NOERROR))
    return b.mtext[:n]


def semget(key, flags):
    return _check(_fn("semget", ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int)(key, 1, flags))


def semctl(semid, cmd, val=0):
    # semctl is variadic; an int fourth argument is passed like a fixed one.
    f = libc().semctl
    f.restype = ctypes.c_int
    return _check(f(ctypes.c_int(semid), ctypes.c_int(0), ctypes.c_int(cmd), ctypes.c_int(val)))


def ctl_stat(name, index):
    """shmctl/msgctl/semctl(index, *_STAT): the id at index of the
    namespace's table, found without knowing any key."""
    buf = ctypes.create_string_buffer(512)
    if name == "sem":
        f = libc().semctl
        f.restype = ctypes.c_int
        return f(ctypes.c_int(index), ctypes.c_int(0), ctypes.c_int(SEM_STAT), buf)
    cmd = SHM_STAT if name == "shm" else MSG_STAT
    f = _fn(name + "ctl", ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
    return f(index, cmd, buf)


def read_shm(shmid):
    addr = shmat(shmid, SHM_RDONLY)
    try:
        return ctypes.string_at(addr, 256).split(b"\0")[0].decode("utf-8", "replace")
    finally:
        shmdt(addr)


# ---- call 1


def plant(params, rep):
    data = ("SBXIPC:" + str(params.get("secret", ""))).encode()

    def shm(key):
        sid = shmget(key, 4096, IPC_CREAT | 0o600)
        addr = shmat(sid, 0)
        ctypes.memmove(addr, data + b"\0", len(data) + 1)
        shmdt(addr)
        return sid

    def msg(key):
        qid = msgget(key, IPC_CREAT | 0o600)
        msgsnd(qid, data)
        return qid

    def sem(key):
        sid = semget(key, IPC_CREAT | 0o600)
        semctl(sid, SETVAL, SEM_MARK)
        return sid

    for name, fn in (("shm", shm), ("msg", msg), ("sem", sem)):
        probe(rep, "create_%s_key" % name, lambda fn=fn: fn(KEY))
        probe(rep, "create_%s_private" % name, lambda fn=fn: fn(IPC_PRIVATE))
    probe(rep, "create_posix_mq", lambda: mq_plant(data))


def mq_plant(data):
    mq_open = _rt("mq_open", ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
    mq_send = _rt("mq_send", ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint)
    mqd = _check(mq_open(MQ_NAME, O_CREAT | O_RDWR, 0o600, None))
    _check(mq_send(mqd, data, len(data), 0))
    return mqd


# ---- call 2


def look(params, rep):
    seen = {}
    probe(rep, "find_shm_key", lambda: _find(seen, "shm_key", lambda: read_shm(shmget(KEY, 0, 0))))
    probe(rep, "find_msg_key", lambda: _find(seen, "msg_key", lambda: msgrcv(msgget(KEY, 0)).decode("utf-8", "replace")))
    probe(rep, "find_sem_key", lambda: _find(seen, "sem_key", lambda: semctl(semget(KEY, 0), GETVAL)))
    for name in ("shm", "msg", "sem"):
        probe(rep, "enumerate_" + name, lambda name=name: _enumerate(seen, name))
        probe(rep, "proc_sysvipc_" + name, lambda name=name: _proc_sysvipc(seen, name))
    probe(rep, "find_posix_mq", lambda: _find(seen, "posix_mq", mq_look))
    probe(rep, "list_dev_mqueue", lambda: _dev_mqueue(seen))
    rep["info"]["seen"] = seen


def _find(seen, what, fn):
    v = fn()
    seen[what] = v
    return v


def _enumerate(seen, name):
    """Every object in the namespace's table, by index: call 1's private
    ones have no key to look them up by."""
    found = []
    for index in range(256):
        oid = ctl_stat(name, index)
        if oid < 0:
            continue
        found.append(oid)
        seen["%s_index_%d" % (name, index)] = _content(name, oid)
    return found


def _content(name, oid):
    try:
        if name == "shm":
            return read_shm(oid)
        if name == "msg":
            return msgrcv(oid).decode("utf-8", "replace")
        return semctl(oid, GETVAL)
    except OSError as e:
        return "id %d (%s)" % (oid, _errname(e))


def _proc_sysvipc(seen, name):
    with open("/proc/sysvipc/" + name) as f:
        rows = f.read().splitlines()[1:]
    if rows:
        seen["proc_sysvipc_" + name] = rows[:10]
    return len(rows)


def mq_look():
    mq_open = _rt("mq_open", ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
    mq_receive = _rt("mq_receive", ctypes.c_ssize_t, ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p)
    mqd = _check(mq_open(MQ_NAME, O_RDONLY | O_NONBLOCK))
    buf = ctypes.create_string_buffer(1 << 16)
    try:
        n = _check(mq_receive(mqd, buf, len(buf), None))
        return buf.raw[:n].decode("utf-8", "replace")
    except OSError as e:
        return "queue exists (%s)" % _errname(e)


def _dev_mqueue(seen):
    names = os.listdir("/dev/mqueue")
    if names:
        seen["dev_mqueue"] = names
    return names


class SysvIpcAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": "sysv-ipc"}

    def execute(self, params):
        params = params or {}
        rep = new_report()
        if int(params.get("phase", 1)) == 1:
            plant(params, rep)
        else:
            look(params, rep)
        return rep
