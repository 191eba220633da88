# skillbox worker harness. Embedded in the skillbox binary (worker.Harness) and
# run as:  python3 -I -S -B -c "$HARNESS" skillbox-worker
#
# -S: no site processing at start. The harness runs site itself (_site) in the
# process where the skill's code runs: a .pth file or sitecustomize of an
# environment the operator did not trust is the skill's code too, and never
# runs in a zygote, which serves many calls.
#
# Speaks the host<->worker protocol of docs/PROTOCOL.md. Standard library only,
# Python >= 3.8. Everything the skill does happens in this process (or, in
# zygote mode, in a forked child of it); the harness never trusts the skill and
# the host never trusts the harness.
import os
import sys

EX_SOFTWARE = 70
PKG = "skillbox_bundle"
MAX_REQUEST = 256 << 20
# An error reply's message and type are cut to these many UTF-8 bytes, so
# that a skill raising with a huge message still reports its exception
# rather than a reply frame over the host's cap.
MAX_MESSAGE = 64 << 10
MAX_TYPE = 256
PRIVATE_FD_MIN = 100
# How the host starts a jailed interpreter's malloc (worker.MallocTunables);
# not a variable of the skill's, so _main removes it.
MALLOC_TUNABLES = "glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432"

# The harness ends its processes with the os._exit of its own load, before
# any skill code ran: a skill that replaces os._exit (one interpreter) would
# otherwise run its replacement after its reply. This only stops the plain
# patch, since the skill can reach this module too; the host bounds how long
# a call's process may live after its reply (docs/RATIONALE.md, "Walls
# between calls").
_exit = os._exit

_state = {"req": None, "rep": None, "ctrl": None, "mark": None, "site": False, "executable": None}


def _site():
    """Process site (site-packages, .pth files, sitecustomize) once, as a
    plain interpreter would have at start. A no-op where the interpreter
    already did (started without -S, as Pyodide is). Returns whether it
    processed site now."""
    if _state["site"] or not sys.flags.no_site:
        return False
    _state["site"] = True
    if _state["executable"]:
        # A per-skill environment (init's "executable"): the interpreter
        # started as its base, reading nothing of the environment; site's
        # venv step finds the environment's pyvenv.cfg beside this.
        sys.executable = _state["executable"]
    import site

    site.main()
    return True


def _privatize(fd):
    """Move fd to a close-on-exec descriptor >= 100 and close fd."""
    import fcntl

    new = fcntl.fcntl(fd, getattr(fcntl, "F_DUPFD_CLOEXEC", 1030), PRIVATE_FD_MIN)
    os.close(fd)
    return new


def _close_inherited():
    """Close every descriptor but stdio and the private protocol ones, so a
    descriptor the host leaked into the worker is never the skill's."""
    keep = set(fd for fd in (_state["req"], _state["rep"], _state["mark"]) if fd is not None)
    try:
        fds = [int(x) for x in os.listdir("/proc/self/fd")]
    except (OSError, ValueError):
        fds = range(3, 4096)
    for fd in fds:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


# ---------------------------------------------------------------- frames

def _read_exact(fd, n):
    """Read exactly n bytes; b"" on EOF before the first byte. A large
    frame is read into one buffer rather than joined from pieces: in a
    fresh process every megabyte copied is a megabyte of page faults."""
    if n > 65536 and hasattr(os, "readv"):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = os.readv(fd, [view[got:]])
            if not k:
                if got == 0:
                    return b""
                raise EOFError("EOF inside a frame")
            got += k
        view.release()
        return buf
    parts = []
    got = 0
    while got < n:
        b = os.read(fd, n - got)
        if not b:
            if got == 0:
                return b""
            raise EOFError("EOF inside a frame")
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def _read_frame(fd):
    """One request frame from fd as a dict, or None on EOF."""
    import json

    hdr = _read_exact(fd, 4)
    if not hdr:
        return None
    n = int.from_bytes(hdr, "big")
    if n == 0 or n > MAX_REQUEST:
        raise ValueError("bad request frame length %d" % n)
    msg = json.loads(_read_exact(fd, n).decode("utf-8"))
    if not isinstance(msg, dict):
        raise ValueError("request frame is not an object")
    return msg


def _encode(obj, parts=False):
    import json

    try:
        data = json.dumps(obj, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: let json escape them
        data = json.dumps(obj, allow_nan=False, separators=(",", ":")).encode("ascii")
    if parts and len(data) > 65536 and hasattr(os, "writev"):
        # Header and payload written apart (writev by _write_all): not
        # copied into one. Only for _send_raw: other callers (Pyodide's
        # bootstrap) get the frame's bytes.
        return (len(data).to_bytes(4, "big"), data)
    return len(data).to_bytes(4, "big") + data


def _grow_pipe(fd, n):
    """Ask for a pipe buffer of n bytes (1 MiB at most: an unprivileged
    process's limit) before a large frame, so that it crosses in one or two
    writes rather than 64 KiB at a time, each waiting for the host to read.
    Best effort: fd may not be a pipe, or the call may be refused."""
    try:
        import fcntl

        if fcntl.fcntl(fd, 1032) < n:  # F_GETPIPE_SZ
            fcntl.fcntl(fd, 1031, min(n, 1 << 20))  # F_SETPIPE_SZ
    except Exception:
        pass


def _write_all(fd, data):
    if isinstance(data, tuple):
        hdr, data = data
        _grow_pipe(fd, len(hdr) + len(data))
        view = memoryview(data)
        n = os.writev(fd, [hdr, view])
        if n < len(hdr):
            _write_all(fd, hdr[n:])
            n = len(hdr)
        view = view[n - len(hdr):]
    else:
        view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _send(obj):
    """Send a reply frame on the reply channel (fd 4, or the zygote socket)."""
    _send_raw(_encode(obj))


def _send_raw(data):
    if _state["ctrl"] is not None:
        for part in data if isinstance(data, tuple) else (data,):
            _state["ctrl"].sendall(part)
    else:
        _write_all(_state["rep"], data)


def _flush_stdio():
    for f in (sys.stdout, sys.stderr):
        try:
            if f is not None:
                f.flush()
        except Exception:
            pass


def _mark_output():
    """Behind the relay, in session mode: flush stdout and stderr and ask
    the relay for a mark, which it sends once it has forwarded what they
    hold, so that the host has the call's output when it has the mark."""
    _flush_stdio()
    if _state["mark"] is not None:
        try:
            os.write(_state["mark"], b"m")
        except OSError:
            pass


def _end_output():
    """Flush stdout and stderr and point descriptors 1 and 2 at /dev/null,
    closing this process's ends of the host's output pipes."""
    _flush_stdio()
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    for fd in (1, 2):
        try:
            os.dup2(null, fd)
        except OSError:
            pass
    os.close(null)


# ---------------------------------------------------------------- errors

def _type_name(t):
    mod = getattr(t, "__module__", None) or ""
    name = getattr(t, "__qualname__", None) or getattr(t, "__name__", "?")
    if mod in ("builtins", "__main__", ""):
        return name
    if mod.startswith(PKG + "."):
        mod = mod[len(PKG) + 1:]
    return mod + "." + name


def _cut_start(text, limit):
    """Keep at most limit UTF-8 bytes of text, from its start."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return data.decode("utf-8", "replace")
    marker = "... [%d more bytes]" % (len(data) - limit)
    return data[:limit].decode("utf-8", "ignore") + marker


def _cut_end(text, limit):
    """Keep at most limit UTF-8 bytes of text, from its end."""
    data = text.encode("utf-8", "replace")
    if limit <= 0 or len(data) <= limit:
        return data.decode("utf-8", "replace")
    marker = "[... traceback truncated ...]\n"
    keep = max(0, limit - len(marker))
    return marker + data[len(data) - keep:].decode("utf-8", "ignore")


def _error_info(kind, exc, max_tb, skip_frames=0):
    import traceback

    tb = exc.__traceback__
    for _ in range(skip_frames):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    try:
        message = str(exc)
    except BaseException:
        message = "<unprintable %s>" % type(exc).__name__
    try:
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except BaseException:
        text = ""
    return {
        "kind": kind,
        "type": _cut_start(_type_name(type(exc)), MAX_TYPE),
        "message": _cut_start(message, MAX_MESSAGE),
        "traceback": _cut_end(text, max_tb),
    }


# ---------------------------------------------------------------- sdk

# @@SDK@@ worker.Harness puts sdk.py (the Skillware stand-in) here.


# ---------------------------------------------------------------- load

def _normalize(name):
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _packages(names):
    if not names:
        return {}
    out = {}
    index = None
    try:
        import importlib.metadata as md
    except ImportError:
        md = None
    for name in names:
        version = None
        if md is not None:
            try:
                version = md.version(name)
            except Exception:
                version = None
            if version is None:
                if index is None:
                    index = {}
                    try:
                        for dist in md.distributions():
                            try:
                                dn = dist.metadata["Name"]
                                if dn and _normalize(dn) not in index:
                                    index[_normalize(dn)] = dist.version or ""
                            except Exception:
                                pass
                    except Exception:
                        pass
                version = index.get(_normalize(name))
        if version is None:
            try:
                import importlib.util

                mod = name.replace("-", "_")
                if importlib.util.find_spec(mod) is not None:
                    version = ""
            except Exception:
                version = None
        out[name] = version
    return out


class LoadError(Exception):
    def __init__(self, type_, message):
        Exception.__init__(self, message)
        self.type_ = type_


def _load_skill(bundle):
    import importlib
    import importlib.util
    import types

    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "skill.py")
    if not os.path.isfile(path):
        raise LoadError("NoSkillFile", "%s does not exist" % path)
    pkg = types.ModuleType(PKG)
    pkg.__path__ = [bundle]
    pkg.__package__ = PKG
    pkg.__file__ = None
    pkg.__spec__ = importlib.util.spec_from_loader(PKG, None, is_package=True)
    pkg.__spec__.submodule_search_locations = [bundle]
    sys.modules[PKG] = pkg
    name = PKG + ".skill"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    pkg.skill = mod
    spec.loader.exec_module(mod)
    # BaseSkill of the SDK in use (the real one or the stand-in); the skill
    # has most likely imported it already.
    base_cls = importlib.import_module("skillware.core.base_skill").BaseSkill

    # The skill class: classes in the module namespace that subclass BaseSkill
    # (not BaseSkill itself) and were defined in skill.py or in another module
    # of the bundle package. Intermediate bases of another candidate are
    # dropped, so `class Base(BaseSkill)` + `class Mine(Base)` picks Mine.
    found = []
    for obj in list(vars(mod).values()):
        if not isinstance(obj, type) or obj is base_cls:
            continue
        try:
            if not issubclass(obj, base_cls):
                continue
        except Exception:
            continue
        m = getattr(obj, "__module__", "") or ""
        if m != name and not m.startswith(PKG + "."):
            continue
        if obj not in found:
            found.append(obj)
    if len(found) > 1:
        found = [c for c in found if not any(o is not c and issubclass(o, c) for o in found)]
    if not found:
        raise LoadError("NoSkillClass", "skill.py defines no BaseSkill subclass")
    if len(found) > 1:
        names = sorted(c.__qualname__ for c in found)
        raise LoadError("SeveralSkillClasses", "skill.py defines several BaseSkill subclasses: " + ", ".join(names))
    return found[0]


# ---------------------------------------------------------------- call

def _run_call(cls, msg, max_tb, parts=False):
    cid = msg.get("id")
    if not isinstance(cid, int) or isinstance(cid, bool) or cid <= 0:
        raise ValueError("call frame without a positive id")
    params = msg.get("params")
    config = msg.get("config") or {}
    _net_begin(msg)
    try:
        result = _invoke(cls, params, config)
    except BaseException as e:  # includes SystemExit and KeyboardInterrupt
        _flush_stdio()
        return _encode(_net_end({"type": "error", "id": cid, "error": _error_info("exception", e, max_tb, 2)}))
    _flush_stdio()
    reply = _net_end({"type": "result", "id": cid, "result": result})
    try:
        return _encode(reply, parts)
    except BaseException as e:
        try:
            message = str(e)
        except BaseException:
            message = type(e).__name__
        bad = {"type": "error", "id": cid,
               "error": {"kind": "result", "type": "ResultNotJSON", "message": message}}
        if "net_attempts" in reply:
            bad["net_attempts"] = reply["net_attempts"]
        return _encode(bad)


# ---------------------------------------------------------------- network hint
#
# When a call frame says "net_hint" (the host runs the call in a sandbox
# without network, where every attempt fails), an audit hook records the
# destinations the skill tries to reach during the call: names it resolves
# and addresses it connects to. They go back in the reply's "net_attempts"
# for the operator's warnings. A hint, not a control: the skill can evade
# or forge it; the walls are the sandbox's. The hook never raises, and is
# installed only in a process that served such a call.

_NET = {"hook": False, "seen": None}
_NET_MAX = 32
_NET_EVENTS = frozenset((
    "socket.getaddrinfo", "socket.connect", "socket.gethostbyname", "socket.gethostbyname_ex",
))
_NET_SERVICES = {"http": 80, "https": 443}
_NET_LOCAL = frozenset(("localhost", "localhost.", "::1", "::", "0.0.0.0", "ip6-localhost"))


def _net_begin(msg):
    _NET["seen"] = None
    if not msg.get("net_hint"):
        return
    if not _NET["hook"]:
        try:
            sys.addaudithook(_net_hook)
        except Exception:
            return
        _NET["hook"] = True
    _NET["seen"] = []


def _net_end(reply):
    """reply with the call's attempts added (as net_attempts), if any."""
    seen, _NET["seen"] = _NET["seen"], None
    if seen:
        reply["net_attempts"] = [{"host": h, "port": p} for h, p in seen]
    return reply


def _net_hook(event, args):
    if event not in _NET_EVENTS:
        return
    seen = _NET["seen"]
    if seen is None or len(seen) >= _NET_MAX:
        return
    try:
        if event == "socket.connect":
            addr = args[1]
            if not isinstance(addr, tuple) or len(addr) < 2:
                return  # a unix socket
            host, port = addr[0], addr[1]
        elif event == "socket.getaddrinfo":
            host, port = args[0], args[1]
        else:
            host, port = args[0], 0
        if isinstance(host, (bytes, bytearray)):
            host = bytes(host).decode("ascii", "replace")
        if not isinstance(host, str) or not host or len(host) > 253:
            return
        host = host.lower()
        if host in _NET_LOCAL or host.startswith("127.") or host.endswith(".localhost"):
            return  # the sandbox's own loopback, which no grant is about
        if isinstance(port, (bytes, bytearray)):
            port = bytes(port).decode("ascii", "replace")
        if isinstance(port, str):
            port = int(port) if port.isdigit() and len(port) <= 5 else _NET_SERVICES.get(port, 0)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            port = 0
        if (host, port) not in seen:
            seen.append((host, port))
    except Exception:
        pass


_TAKES_CONFIG = {}
_PLAIN = (dict, list, str, int, float, bool, type(None))


def _takes_config(cls):
    """Whether cls(config) is the way to build the skill (Skillware's
    BaseSkill.__init__ takes config). Cached per class: inspect.signature
    costs ~0.3 ms in a fresh zygote child, whose every page it touches is a
    copy-on-write fault, so the zygote computes it once before forking."""
    known = _TAKES_CONFIG.get(cls)
    if known is None:
        known = _TAKES_CONFIG[cls] = _signature_takes_config(cls)
    return known


def _signature_takes_config(cls):
    # The usual case, without inspect: the class keeps the stand-in's
    # __init__(self, config=None), __new__ and metaclass (a child that
    # imported the skill itself computes this once per call).
    init = next((k.__dict__["__init__"] for k in cls.__mro__ if "__init__" in k.__dict__), None)
    if (init is not None and init is _sdk_state["base_init"]
            and cls.__new__ is object.__new__ and type(cls).__call__ is type.__call__):
        return True
    import inspect

    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return True
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL):
            return True
    return False


def _invoke(cls, params, config):
    config = dict(config)
    if _takes_config(cls):
        inst = cls(config)
    else:  # a skill whose __init__ takes no arguments
        inst = cls()
        if not isinstance(getattr(inst, "config", None), dict):
            inst.config = config
    result = inst.execute(params)
    # Plain JSON values skip inspect.isawaitable, whose ABC check costs
    # ~0.1 ms of copy-on-write faults in a fresh zygote child, and inspect
    # itself, whose import (dis, ast, tokenize...) costs a one-shot call
    # several ms.
    if type(result) not in _PLAIN and _isawaitable(result):  # an `async def execute`
        import asyncio

        async def _await(aw):
            return await aw

        result = asyncio.run(_await(result))
    return result


def _isawaitable(obj):
    import inspect

    return inspect.isawaitable(obj)


def _python_version():
    """platform.python_version() without importing platform (~1 ms of a
    one-shot start): the first word of sys.version, which it parses."""
    return sys.version.split()[0]


# ---------------------------------------------------------------- modes

def _serve_one(cls, max_tb, last=False):
    """Read one call on the request fd and answer it. False on EOF.

    When this is the worker's last call, its stdout and stderr are ended
    before the reply goes out, so the host has the complete output as soon
    as it has the reply (output written after that, say by a thread, goes
    to /dev/null)."""
    msg = _read_frame(_state["req"])
    if msg is None:
        return False
    if msg.get("type") != "call":
        raise ValueError("expected a call frame, got %r" % msg.get("type"))
    reply = _run_call(cls, msg, max_tb, True)
    if last:
        _end_output()
    else:
        _mark_output()
    try:
        _send_raw(reply)
    except (BrokenPipeError, ConnectionError):
        return False
    return True


class _Rehearsal:
    """The stand-in skill _rehearse calls: harness code, not the skill's."""

    def __init__(self, config=None):
        self.config = config

    def execute(self, params):
        return {"n": len(params), "words": [k for k in params], "ratio": 0.5, "ok": True}


_TAKES_CONFIG[_Rehearsal] = True  # known: no inspect in the child

def _rehearse(cls):
    """Run the harness's own part of a call once, with a stand-in skill and
    made-up values, in a zygote child (or a single-mode worker started
    before its call: init's "rehearse") before it reports ready: decoding a
    call frame, building an instance, encoding a result frame, and
    computing how cls is built (_takes_config). Their first run in a fresh
    fork writes to pages shared with the zygote (reference counts of the
    json module's and the harness's objects, the allocator's pools), each
    write a copy-on-write fault — ~30 us each on a virtual machine that
    flushes TLBs through its hypervisor (docs/PERFORMANCE.md, "Served call
    overhead"); in a fresh interpreter it is their first execution. Done
    here, while the worker waits for its call, the call does not pay them.
    No code of the skill runs but what _takes_config reads of its class
    (the call would read it anyway), and nothing stays but the pages and
    that cached answer."""
    import json

    frame = b'{"type":"call","id":1,"params":{"text":"a b","top":3,"x":[1,2.5,true,null]},"config":{}}'
    msg = json.loads(frame.decode("utf-8"))
    _run_call(_Rehearsal, msg, 512, True)
    try:
        _takes_config(cls)
    except BaseException:
        pass  # the call computes it again, and fails there as it would have


def _set_nondumpable():
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_DUMPABLE = 4
        return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except Exception:
        return False


# sched_getattr and ioprio_get, which Python does not wrap, by machine.
_ATTR_SYSCALLS = {"x86_64": (315, 252), "aarch64": (275, 31)}


def _attrs_reader():
    """A function returning what a process of the same uid may change in
    this one, with no more right than that uid (prlimit, setpriority,
    sched_setscheduler and sched_setattr, sched_setaffinity, ioprio_set),
    and a fork inherits: resource limits, nice value, scheduling policy and
    parameters, CPU affinity, I/O priority. A zygote compares them after
    each call: its call's processes share its uid, and whatever they set in
    it every later child would start with. Built once; each reading costs
    a few tens of microseconds."""
    try:
        import resource

        getters = [(n, lambda r=getattr(resource, n): resource.getrlimit(r))
                   for n in sorted(dir(resource)) if n.startswith("RLIMIT_")]
    except ImportError as e:  # an interpreter built without it
        getters = [("resource", lambda e="%s: %s" % (type(e).__name__, e): e)]
    getters += [
        ("nice", lambda: os.getpriority(os.PRIO_PROCESS, 0)),
        ("policy", lambda: os.sched_getscheduler(0)),
        ("priority", lambda: os.sched_getparam(0).sched_priority),
        ("affinity", lambda: sorted(os.sched_getaffinity(0))),
    ]
    nrs = _ATTR_SYSCALLS.get(os.uname().machine)
    if nrs is not None:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.syscall.restype = ctypes.c_long
            attr = ctypes.create_string_buffer(56)  # SCHED_ATTR_SIZE_VER1
            getattr_nr, ioprio_nr = ctypes.c_long(nrs[0]), ctypes.c_long(nrs[1])
            IOPRIO_WHO_PROCESS = 1
            getters += [
                ("sched_attr", lambda: (libc.syscall(getattr_nr, 0, attr, 56, 0), attr.raw)),
                ("ioprio", lambda: libc.syscall(ioprio_nr, IOPRIO_WHO_PROCESS, 0)),
            ]
        except Exception as e:
            getters.append(("ctypes", lambda e="%s: %s" % (type(e).__name__, e): e))

    def read():
        out = {}
        for name, fn in getters:
            try:
                out[name] = fn()
            except Exception as e:
                out[name] = "%s: %s" % (type(e).__name__, e)
        return out

    return read


def _wipe(path):
    """Empty the directory path for good, or raise.

    Works on descriptors, never on paths below path, so no depth, name or
    permission stops it: each directory met is opened (O_NOFOLLOW) from its
    parent, its files unlinked and its sub-directories moved up to path
    itself, so the walk never holds more than two descriptors and never
    recurses. Everything below path belongs to the jail's uid, whose
    processes are all gone when this runs. The directory's own extended
    attributes, mode and times are reset too: they would carry bits as well
    as a file does."""
    import stat

    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    os.chmod(path, 0o700)
    top = os.open(path, flags)
    try:
        moved = [0]
        while True:
            names = os.listdir(top)
            if not names:
                break
            for name in names:
                _wipe_entry(top, name, flags, moved)
        for attr in os.listxattr(top):
            os.removexattr(top, attr)
        os.utime(top, ns=(0, 0))
    finally:
        os.close(top)


def _wipe_entry(top, name, flags, moved):
    """Remove top/name: a file at once; a directory once its files are gone
    and its sub-directories moved up into top (the caller's loop meets them
    there)."""
    import stat

    st = os.stat(name, dir_fd=top, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=top)
        return
    _own_dir(top, name, st)
    d = os.open(name, flags, dir_fd=top)
    try:
        for sub in os.listdir(d):
            sst = os.stat(sub, dir_fd=d, follow_symlinks=False)
            if not stat.S_ISDIR(sst.st_mode):
                os.unlink(sub, dir_fd=d)
                continue
            _own_dir(d, sub, sst)  # moving a directory rewrites its ".."
            while True:
                moved[0] += 1
                dst = ".skillbox-wipe-%d" % moved[0]
                try:
                    os.stat(dst, dir_fd=top, follow_symlinks=False)
                except FileNotFoundError:
                    break
            os.rename(sub, dst, src_dir_fd=d, dst_dir_fd=top)
    finally:
        os.close(d)
    os.rmdir(name, dir_fd=top)


def _own_dir(parent, name, st):
    """Give the owner full access to a directory the skill locked (chmod 0)."""
    import stat

    if stat.S_IMODE(st.st_mode) & 0o700 != 0o700:
        os.chmod(name, stat.S_IMODE(st.st_mode) | 0o700, dir_fd=parent)


class _Zygote:
    def __init__(self, init, cls, max_tb):
        import socket

        self.init = init
        self.cls = cls  # the skill class in a warm zygote, else None
        self.max_tb = max_tb
        self.scratch = init.get("scratch") or ""
        self.sock = _state["ctrl"]
        self.buf = b""
        self.fds = []
        self.children = {}  # pid -> call id
        self.pending = set()  # pids forked but not yet exited
        self.exits = []  # exited messages to send after cleanup
        self.forks = 0
        self.retire = None  # why the zygote must not serve another call
        self.read_attrs = dict  # _attrs_reader() once run starts
        self.attrs = {}  # what it read then
        self.socket = socket

    def run(self):
        import select
        import signal

        # Everything a call child needs is imported here, once, so a fork
        # costs a fork and not a module import (inspect alone is ~6 ms).
        import gc
        import inspect  # noqa: F401
        import json  # noqa: F401
        import traceback  # noqa: F401

        # Move every object alive now (the interpreter, the harness, the
        # skill) out of the collector's reach: a collection in a call child
        # would otherwise write to the header of each of them, copying the
        # zygote's pages one by one into the child.
        if self.cls is not None:
            _takes_config(self.cls)
        gc.collect()
        gc.freeze()

        # A call child may signal its zygote; it must not kill the zygote
        # that serves the next call. As pid 1 of the jail's namespace the
        # kernel already drops every signal from inside it that has no
        # handler, so only Python's own SIGINT handler goes. Elsewhere the
        # catchable signals are ignored (and each child resets them, which
        # costs ~20 us of copy-on-write faults per signal).
        self.ignored = ()
        if os.getpid() != 1:
            self.ignored = ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM")
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for name in self.ignored:
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        rfd, wfd = os.pipe()
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)
        self.wake = (rfd, wfd)
        signal.signal(signal.SIGCHLD, lambda *a: None)
        signal.set_wakeup_fd(wfd)
        self.read_attrs = _attrs_reader()
        self.attrs = self.read_attrs()
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        poller.register(rfd, select.POLLIN)
        try:
            while True:
                self._reap()
                self._flush_exits()
                if self.retire:
                    # Cleanup failed: this zygote's state is unknown, so it
                    # serves no other call. The host starts a fresh one.
                    sys.stderr.write("skillbox-worker: zygote retired: %s\n" % self.retire)
                    break
                ready = dict(poller.poll())
                if rfd in ready:
                    try:
                        while os.read(rfd, 512):
                            pass
                    except (BlockingIOError, InterruptedError):
                        pass
                if self.sock.fileno() in ready:
                    if not self._receive():
                        break
                    while True:
                        msg = self._next_frame()
                        if msg is None:
                            break
                        self._handle(msg)
        finally:
            self._shutdown()

    def _receive(self):
        import array

        sock = self.socket
        flags = getattr(sock, "MSG_CMSG_CLOEXEC", 0)
        data, anc, mflags, _ = self.sock.recvmsg(1 << 16, sock.CMSG_SPACE(16 * 4), flags)
        for level, typ, cdata in anc:
            if level == sock.SOL_SOCKET and typ == sock.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(cdata[: len(cdata) - (len(cdata) % a.itemsize)])
                self.fds.extend(a)
        if mflags & getattr(sock, "MSG_CTRUNC", 0):
            raise ValueError("control message truncated (too many descriptors)")
        if not data:
            return False
        self.buf += data
        return True

    def _next_frame(self):
        import json

        if len(self.buf) < 4:
            return None
        n = int.from_bytes(self.buf[:4], "big")
        if n == 0 or n > MAX_REQUEST:
            raise ValueError("bad control frame length %d" % n)
        if len(self.buf) < 4 + n:
            return None
        payload, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        msg = json.loads(payload.decode("utf-8"))
        if not isinstance(msg, dict):
            raise ValueError("control frame is not an object")
        return msg

    def _handle(self, msg):
        if msg.get("type") != "fork":
            raise ValueError("zygote expected a fork frame, got %r" % msg.get("type"))
        cid = msg.get("id")
        if not isinstance(cid, int) or isinstance(cid, bool) or cid <= 0:
            raise ValueError("fork frame without a positive id")
        if len(self.fds) < 4:
            raise ValueError("fork frame without its 4 descriptors")
        fds, self.fds = self.fds[:4], self.fds[4:]
        if self.pending:
            # One call's process at a time: the next child exists only once
            # the previous call is gone and cleaned up after.
            for fd in fds:
                os.close(fd)
            _send({"type": "error", "id": cid, "error": {
                "kind": "fork", "type": "ZygoteBusy", "message": "a call child is still running"}})
            return
        _flush_stdio()
        self.forks += 1
        try:
            pid = os.fork()
        except OSError as e:
            for fd in fds:
                os.close(fd)
            _send({"type": "error", "id": cid, "error": _error_info("fork", e, self.max_tb)})
            return
        if pid == 0:
            self._child(fds, self.forks == 1)  # never returns
        for fd in fds:
            os.close(fd)
        self.children[pid] = cid
        self.pending.add(pid)
        _send({"type": "forked", "id": cid, "pid": pid})

    def _child(self, fds, first):
        code = EX_SOFTWARE
        try:
            import signal

            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for name in self.ignored:
                signal.signal(getattr(signal, name), signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            for fd in self.wake:
                os.close(fd)
            self.sock.close()
            _state["ctrl"] = None
            for fd in self.fds:
                os.close(fd)
            req, rep, out, err = fds
            _state["req"] = _privatize(req)
            _state["rep"] = _privatize(rep)
            os.dup2(out, 1)
            os.dup2(err, 2)
            for fd in (out, err):
                if fd > 2:
                    os.close(fd)
            _close_inherited()
            cls = self.cls
            if cls is None:
                # The skill's code, its environment's site included, runs
                # here only: in this process, which serves one call.
                if _site():
                    # The environment may hold the real Skillware SDK.
                    _sdk_install(_manifest_of(self.init))
                # The first child reports the requirements for the host.
                cls, ready = _import_skill(self.init, self.max_tb, first)
            else:
                ready = {"type": "ready", "class": cls.__name__}
            if cls is not None:
                _rehearse(cls)
            try:
                _send(ready)
            except (BrokenPipeError, ConnectionError):
                cls = None  # the host abandoned this child before its call
            if cls is not None:
                _serve_one(cls, self.max_tb, last=True)
            code = 0
        except BaseException:
            try:
                import traceback

                traceback.print_exc()
            except BaseException:
                pass
        finally:
            _flush_stdio()
            _exit(code)

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            if self._report(pid, status):
                # Clean up after the call, then report what the cleanup
                # reaped (a pre-forked child killed without its own /proc).
                for rpid, rstatus in self._cleanup():
                    self._report(rpid, rstatus)

    def _report(self, pid, status):
        """Send exited for a call child; False for other processes."""
        cid = self.children.pop(pid, None)
        self.pending.discard(pid)
        if cid is None:
            return False  # an orphan we inherited as pid 1
        msg = {"type": "exited", "id": cid, "pid": pid}
        if os.WIFSIGNALED(status):
            msg["signal"] = os.WTERMSIG(status)
        else:
            msg["code"] = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        self.exits.append(msg)
        return True

    def _flush_exits(self):
        while self.exits:
            _send(self.exits.pop(0))

    def _cleanup(self):
        """Kill every process the call left and empty the scratch; any
        failure retires the zygote."""
        reaped = []
        if os.getpid() == 1:
            reaped, ok = _kill_namespace()
            if not ok:
                self.retire = "processes of the call survived SIGKILL"
        if self.scratch:
            try:
                _wipe(self.scratch)
            except BaseException as e:
                self.retire = "emptying %s failed: %s: %s" % (self.scratch, type(e).__name__, e)
        # A call's process may set the zygote's limits, nice value,
        # scheduling and I/O priority (it has the zygote's uid); the next
        # child would inherit them, and some (a lowered hard limit, a
        # higher nice value) the zygote cannot set back.
        now = self.read_attrs()
        if now != self.attrs and not self.retire:
            changed = sorted(k for k in set(now) | set(self.attrs) if now.get(k) != self.attrs.get(k))
            self.retire = "a call changed the zygote's %s" % ", ".join(changed)
        return reaped

    def _shutdown(self):
        import signal

        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if os.getpid() == 1:
            _kill_namespace()
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
            except InterruptedError:
                continue


def _kill_namespace():
    """As pid 1: kill every other process of the namespace and reap them.
    Returns the (pid, status) pairs it reaped and whether none is left.

    Every process of a pid namespace descends from its pid 1 and is
    re-parented to it when its parent dies, so "no child left" means "no
    other process left": no need to read /proc (where hidepid hides a
    process that made itself non-dumpable)."""
    import signal
    import time

    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass
    reaped = []
    deadline = time.monotonic() + 2.0
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped, True
        except InterruptedError:
            continue
        if pid != 0:
            reaped.append((pid, status))
            continue
        if time.monotonic() > deadline:
            return reaped, False
        time.sleep(0.001)


# ---------------------------------------------------------------- main

def _load(init):
    """Load the skill an init frame names. Returns (cls, reply, max_tb): the
    skill class and its ready reply, or None and the load-error reply. Also
    used by the Pyodide worker, which has no descriptors of its own."""
    max_tb = init.get("max_traceback") or 8192
    _site()
    _sdk_install(_manifest_of(init))
    cls, reply = _import_skill(init, max_tb, True)
    return cls, reply, max_tb


def _manifest_of(init):
    manifest = init.get("manifest")
    return manifest if isinstance(manifest, dict) else {}


def _import_skill(init, max_tb, report_packages):
    """Import the skill (site already processed). Returns (cls, reply): the
    class and its ready reply, or None and the load-error reply."""
    # Requirements are reported before the import, so that a skill that
    # imports a missing package is reported as an unmet requirement.
    packages = _packages(init.get("requirements") or []) if report_packages else {}
    try:
        cls = _load_skill(init.get("bundle") or ".")
    except LoadError as e:
        _flush_stdio()
        return None, {"type": "error", "id": 0, "packages": packages,
                      "error": {"kind": "load", "type": e.type_, "message": str(e)}}
    except BaseException as e:
        _flush_stdio()
        return None, {"type": "error", "id": 0, "packages": packages,
                      "error": _error_info("load", e, max_tb, 2)}
    _flush_stdio()
    return cls, {"type": "ready", "class": cls.__name__, "python": _python_version(),
                 "packages": packages}


def _main():
    if os.environ.get("GLIBC_TUNABLES") == MALLOC_TUNABLES:
        del os.environ["GLIBC_TUNABLES"]
    _state["req"] = _privatize(3)
    _state["rep"] = None
    try:
        _state["rep"] = _privatize(4)
    except OSError:
        pass  # zygote mode may run without fd 4
    if globals().get("_skillbox_mark_fd") is not None:  # behind the relay
        _state["mark"] = _privatize(globals().pop("_skillbox_mark_fd"))
    _close_inherited()
    init = _read_frame(_state["req"])
    if init is None:
        return 0
    if init.get("type") != "init":
        raise ValueError("expected an init frame, got %r" % init.get("type"))
    _state["executable"] = init.get("executable") or None
    mode = init.get("mode") or "single"
    if mode not in ("single", "session", "zygote"):
        raise ValueError("unknown mode %r" % mode)
    if mode == "zygote":
        import socket

        _state["ctrl"] = socket.socket(fileno=_state["req"])
        if _state["rep"] is not None:
            os.close(_state["rep"])
            _state["rep"] = None
    if mode == "zygote":
        return _zygote_main(init)
    cls, ready, max_tb = _load(init)
    if cls is not None and mode == "single" and init.get("rehearse"):
        _rehearse(cls)
    if mode == "session":
        _mark_output()
    _send(ready)
    if cls is None:
        return 0
    if mode == "single":
        _serve_one(cls, max_tb, last=True)
    else:
        while _serve_one(cls, max_tb):
            pass
    return 0


def _zygote_main(init):
    """Zygote mode. Unless init says warm, the zygote holds only trusted
    code: the harness, the Skillware stand-in, the standard library (the
    modules the skill's files import, found without running them) and, when
    the operator trusts the interpreter's environment, its site and the
    skill's third-party imports. The skill is imported in each call's child."""
    max_tb = init.get("max_traceback") or 8192
    warm = bool(init.get("warm"))
    if warm or init.get("trusted_env"):
        _site()
    # Before site (an untrusted environment's), this is the stand-in; each
    # call child checks again once it has processed site.
    _sdk_install(_manifest_of(init))
    if warm:
        cls, ready = _import_skill(init, max_tb, True)
        if cls is None:
            _send(ready)
            return 0
    else:
        cls = None
        _preimport(init, bool(init.get("trusted_env")))
        ready = {"type": "ready", "class": "", "python": _python_version()}
    ready["dumpable"] = not _set_nondumpable()
    _send(ready)
    _Zygote(init, cls, max_tb).run()
    return 0


# Standard-library modules a zygote never imports: they do something at
# import (open a browser, print, talk to a display or a terminal). site is
# imported only where -S keeps it from processing anything.
_NO_PREIMPORT = frozenset((
    "antigravity", "this", "tkinter", "_tkinter", "turtle", "turtledemo", "idlelib",
    "__hello__", "__phello__", "readline", "__main__", "webbrowser",
))
# What a zygote reads to find its pre-imports, bundle and environment
# together: enough for a skill and a few packages, small beside a start.
_MAX_SCAN_FILES = 400
_MAX_SCAN_BYTES = 8 << 20


def _preimport(init, trusted_env):
    """Import, in the zygote, the modules the skill will need, found without
    running anything: the top-level names that import statements in the
    bundle's Python files name, and, followed through the interpreter's
    site directories, those that the environment's .pth files,
    sitecustomize and the third-party packages the skill imports name in
    turn. Files are read as text, never run. Only standard-library modules
    are imported, or any module when the operator trusts the environment; a
    name the bundle defines itself (utils.py, a package folder) never is, so
    a skill that puts its folder on sys.path still gets its own module."""
    import importlib

    budget = [_MAX_SCAN_FILES, _MAX_SCAN_BYTES]
    names, local = _scan_tree(init.get("bundle") or ".", budget)
    stdlib = getattr(sys, "stdlib_module_names", None)  # Python >= 3.10
    if stdlib is None and not trusted_env:
        return  # no way to tell the standard library from the rest
    names |= _scan_environment(names, local, _site_dirs(init), stdlib or frozenset(), budget)
    if sys.flags.no_site:
        # What each child's own site processing runs first. With -S,
        # importing site does not process it.
        names |= {"site", "_sitebuiltins"}
    for name in sorted(names):
        top = name.partition(".")[0]
        if name in sys.modules or top in local or top in _NO_PREIMPORT:
            continue
        if not (trusted_env or top in stdlib):
            continue
        try:
            importlib.import_module(name)
        except BaseException:
            pass
    # A module the bundle defines that came in with another (email brings
    # calendar) is forgotten: the skill's own import finds it afresh.
    for name in list(sys.modules):
        if name.partition(".")[0] in local:
            del sys.modules[name]
    _flush_stdio()


def _site_dirs(init):
    """The interpreter's site directories (init's site_paths as the host
    probed them, which covers a virtual environment), minus what is already
    on sys.path (the standard library)."""
    dirs = init.get("site_paths")
    if not isinstance(dirs, list):
        import site

        dirs = site.getsitepackages()
    return [d for d in dirs if isinstance(d, str) and d not in sys.path and os.path.isdir(d)]


_IMPORT_LINE = (rb"^[ \t]*(?:from[ \t]+([A-Za-z_][A-Za-z0-9_.]*)[ \t]+import\b"
                rb"|import[ \t]+([^\n#;]+))")
# .pth lines run as code, often with the import inside an exec string.
_IMPORT_ANYWHERE = rb"(?:\bimport[ \t]+|__import__\([ \t]*['\"])([A-Za-z_][A-Za-z0-9_.]*)"


def _scan_tree(top, budget):
    """(names the .py files under top import at top level, module names
    they define), within budget [files, bytes] (shared, decremented)."""
    names, local = set(), set()
    for root, dirs, files in os.walk(top):
        local.update(dirs)
        for f in files:
            if f.endswith(".py"):
                local.add(f[:-3])
                names |= _scan_file(os.path.join(root, f), _IMPORT_LINE, budget)
        if budget[0] <= 0:
            break
    return names, local


def _scan_file(path, pattern, budget):
    """The module names (dotted: a submodule is imported with its parents)
    pattern finds in the file at path."""
    import re

    if budget[0] <= 0 or budget[1] <= 0:
        return set()
    budget[0] -= 1
    try:
        with open(path, "rb") as fh:
            text = fh.read(min(budget[1], 1 << 20))
    except OSError:
        return set()
    budget[1] -= len(text)
    out = set()
    for m in re.finditer(pattern, text, re.M):
        for group in m.groups():
            for part in (group or b"").split(b","):
                word = part.strip().split(b" ")[0].strip(b".")
                if re.match(rb"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", word):
                    out.add(word.decode())
    return out


def _scan_environment(names, local, site_dirs, stdlib, budget):
    """The names the environment's start-up code (.pth files, sitecustomize)
    and the third-party packages among names (not the bundle's own, local)
    import, followed transitively through site_dirs within budget."""
    found = set()
    queue = [n for n in names if n.partition(".")[0] not in local] + ["sitecustomize"]
    for d in site_dirs:
        try:
            pths = sorted(f for f in os.listdir(d) if f.endswith(".pth"))
        except OSError:
            continue
        for f in pths:
            queue.extend(_scan_file(os.path.join(d, f), _IMPORT_ANYWHERE, budget))
    seen, scanned = set(), set()
    while queue and budget[0] > 0:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        found.add(name)
        top = name.partition(".")[0]
        if top in stdlib or top in scanned:
            continue
        scanned.add(top)  # a package's files are scanned once
        for d in site_dirs + [p for p in sys.path if p]:
            pkg, mod = os.path.join(d, top), os.path.join(d, top + ".py")
            if os.path.isdir(pkg):
                queue.extend(_scan_tree(pkg, budget)[0])
                break
            if os.path.isfile(mod):
                queue.extend(_scan_file(mod, _IMPORT_LINE, budget))
                break
    return found


def _fatal(exc):
    try:
        import traceback

        sys.stderr.write("skillbox-worker: harness error\n")
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    except BaseException:
        pass
    try:
        if _state["rep"] is not None or _state["ctrl"] is not None:
            _send({"type": "error", "id": 0, "error": {
                "kind": "harness", "type": _type_name(type(exc)), "message": str(exc)}})
    except BaseException:
        pass
    _flush_stdio()
    _exit(EX_SOFTWARE)


if __name__ == "__main__":
    try:
        _rc = _main()
    except BaseException as _e:
        _fatal(_e)
    _flush_stdio()
    _exit(_rc)
