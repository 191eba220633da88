"""Attack corpus: state/deep-scratch.

Call 1 (phase 1) leaves trees in the scratch (cwd, $HOME, $TMPDIR) that
path-based, recursive removal cannot take away, each with a file holding
params["secret"]; params["variant"] picks which:
- "long": a chain of 255-byte names deeper than PATH_MAX (removal by path
  fails with ENAMETOOLONG);
- "deep": a chain of params["levels"] (default 5000) one-letter levels:
  recursive removal in Python raises RecursionError (the default limit is
  1000), and the path is past PATH_MAX too. (Deeper costs time: in the
  linux jail each step's cost grows with the depth, 20000 levels take
  about 30 s). On an emulated OS (Pyodide, sys.platform "emscripten")
  the chain stops at EMULATED_LEVELS: there each step costs far more, and
  no removal happens to defeat (each call gets a fresh in-memory file
  system), so depth proves nothing there;
- "odd": mode-0 and read-only directories nested in each other, names with
  newlines and non-UTF-8 bytes, a FIFO, symlinks to / and to themselves.
The chains are built with fd-relative steps (mkdir/open with dir_fd), or
with chdir where the platform has no dir_fd. Call 2 (phase 2) walks the
scratch fd-relatively and reports in info.seen every entry under a
"sbxleft-" name and the content of every "secret" file it finds.
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

import stat  # noqa: E402
import sys  # noqa: E402

PREFIX = "sbxleft-"
DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
HAS_DIR_FD = os.mkdir in os.supports_dir_fd and os.open in os.supports_dir_fd
MAX_SEEN = 20
EMULATED_LEVELS = 200


def _scratch():
    """The scratch folders the jail gives (usually one)."""
    return sorted({os.getcwd(), os.path.expanduser("~"), os.environ.get("TMPDIR", "/tmp")})


def _write(name, secret, dir_fd):
    fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=dir_fd)
    try:
        os.write(fd, secret.encode())
    finally:
        os.close(fd)


# ---- call 1


def chain(top, names, secret):
    """top/names[0]/names[1]/.../secret, one relative step at a time.
    Returns the depth reached and the length of the full path."""
    if not HAS_DIR_FD:
        return _chain_chdir(top, names, secret)
    os.mkdir(top)
    fd = os.open(top, DIR_FLAGS)
    depth, length = 0, len(os.path.abspath(top))
    try:
        for n in names:
            os.mkdir(n, dir_fd=fd)
            nfd = os.open(n, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
            depth += 1
            length += 1 + len(n)
        _write("secret", secret, fd)
    finally:
        os.close(fd)
    return {"depth": depth, "path_length": length}


def _chain_chdir(top, names, secret):
    back = os.getcwd()
    depth = 0
    try:
        os.mkdir(top)
        os.chdir(top)
        for n in names:
            os.mkdir(n)
            os.chdir(n)
            depth += 1
        with open("secret", "w") as f:
            f.write(secret)
    finally:
        os.chdir(back)
    return {"depth": depth, "path_length": len(back) + len(top) + sum(1 + len(n) for n in names), "chdir": True}


def odd(base, secret, rep):
    """Trees a naive wipe skips: unreadable, unwritable, unnameable."""
    os.mkdir(base)
    steps = [
        ("locked_dir", lambda: _locked(os.path.join(base, PREFIX + "locked"), secret)),
        ("nested_locked", lambda: _nested_locked(os.path.join(base, PREFIX + "nest"), secret)),
        ("odd_names", lambda: _odd_names(os.fsencode(base), secret)),
        ("fifo", lambda: os.mkfifo(os.path.join(base, PREFIX + "fifo"))),
        ("symlink_root", lambda: os.symlink("/", os.path.join(base, PREFIX + "root"))),
        ("symlink_loop", lambda: os.symlink(PREFIX + "loop", os.path.join(base, PREFIX + "loop"))),
        ("locked_file", lambda: _locked_file(os.path.join(base, PREFIX + "file"), secret)),
        ("base_readonly", lambda: os.chmod(base, 0o500)),
    ]
    for name, fn in steps:
        probe(rep, "odd:" + name, fn)


def _locked(d, secret):
    os.mkdir(d)
    with open(os.path.join(d, "secret"), "w") as f:
        f.write(secret)
    os.chmod(d, 0)


def _nested_locked(d, secret):
    os.makedirs(os.path.join(d, "a", "b"))
    with open(os.path.join(d, "a", "b", "secret"), "w") as f:
        f.write(secret)
    os.chmod(os.path.join(d, "a", "b"), 0)
    os.chmod(os.path.join(d, "a"), 0o500)
    os.chmod(d, 0)


def _odd_names(base, secret):
    d = os.path.join(base, os.fsencode(PREFIX) + b"\n\xff\xfe name\n")
    os.mkdir(d)
    with open(os.path.join(d, b"secret"), "w") as f:
        f.write(secret)
    with open(os.path.join(d, b"\xff\n\x01"), "w") as f:
        f.write(secret)
    os.chmod(d, 0o500)


def _locked_file(p, secret):
    with open(p, "w") as f:
        f.write(secret)
    os.chmod(p, 0)


def plant(params, rep):
    secret = str(params.get("secret", ""))
    variant = params.get("variant", "long")
    base = os.path.join(_scratch()[0], PREFIX + variant)
    rep["info"]["dir_fd"] = HAS_DIR_FD
    if variant == "long":
        names = [("L%03d" % i) + "x" * 251 for i in range(int(params.get("levels", 20)))]
        probe(rep, "chain_long", lambda: chain(base, names, secret))
    elif variant == "deep":
        levels = int(params.get("levels", 5000))
        if sys.platform == "emscripten" and levels > EMULATED_LEVELS:
            rep["info"]["levels_capped"] = "%d -> %d (emulated)" % (levels, EMULATED_LEVELS)
            levels = EMULATED_LEVELS
        names = ["d"] * levels
        probe(rep, "chain_deep", lambda: chain(base, names, secret))
    elif variant == "odd":
        odd(base, secret, rep)
    else:
        raise ValueError("unknown variant %r" % variant)


# ---- call 2


class Walk:
    """An fd-relative walk that goes down with openat and back up with
    "..", so neither path length nor depth limits it; it makes unreadable
    directories readable on the way (same owner)."""

    def __init__(self, limit):
        self.limit = limit
        self.entries = 0
        self.max_depth = 0
        self.sample = []
        self.secrets = []
        self.errors = []

    def run(self, top, names):
        fd = os.open(top, DIR_FLAGS)
        stack = [list(names)]
        path = []
        try:
            while stack and self.entries < self.limit:
                if not stack[-1]:
                    stack.pop()
                    if path:
                        path.pop()
                        fd = self._up(fd)
                    continue
                name = stack[-1].pop()
                self._note(path + [name])
                sub = self._enter(fd, name)
                if sub is not None:
                    fd, listing = sub
                    path.append(name)
                    stack.append(listing)
                    self.max_depth = max(self.max_depth, len(path))
        finally:
            os.close(fd)

    def _note(self, parts):
        """Counts every entry; names the shallow ones (a chain of 20000
        would fill any sample)."""
        self.entries += 1
        if len(parts) <= 3 and len(self.sample) < MAX_SEEN:
            self.sample.append("/".join(repr(n)[1:-1][:40] for n in parts))

    def _enter(self, fd, name):
        """Reads a "secret" file, or opens a directory: (fd, listing)."""
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and name == "secret" and len(self.secrets) < MAX_SEEN:
                self.secrets.append(self._read(fd, name, st))
            if not stat.S_ISDIR(st.st_mode):
                return None
            if st.st_mode & 0o700 != 0o700:
                os.chmod(name, stat.S_IMODE(st.st_mode) | 0o700, dir_fd=fd)
            nfd = os.open(name, DIR_FLAGS, dir_fd=fd)
        except OSError as e:
            if len(self.errors) < MAX_SEEN:
                self.errors.append("%r: %s" % (name, _errname(e)))
            return None
        os.close(fd)
        return nfd, os.listdir(nfd)

    def _read(self, fd, name, st):
        if st.st_mode & 0o400 == 0:
            os.chmod(name, 0o600, dir_fd=fd)
        rfd = os.open(name, os.O_RDONLY, dir_fd=fd)
        try:
            return os.read(rfd, 200).decode("utf-8", "replace")
        finally:
            os.close(rfd)

    def _up(self, fd):
        nfd = os.open("..", DIR_FLAGS, dir_fd=fd)
        os.close(fd)
        return nfd


def look(params, rep):
    seen = {}
    other = []
    for top in _scratch():
        try:
            names = os.listdir(top)
        except OSError as e:
            rep["probes"]["list:" + top] = {"ok": False, "err": str(e), "errno": _errname(e)}
            continue
        ours = [n for n in names if n.startswith(PREFIX)]
        other += [os.path.join(top, n) for n in names if not n.startswith(PREFIX)]
        if not ours:
            continue
        w = Walk(int(params.get("limit", 100000)))
        probe(rep, "walk:" + top, lambda: w.run(top, ours) if HAS_DIR_FD else None)
        seen[top] = {"entries": w.entries if HAS_DIR_FD else len(ours), "max_depth": w.max_depth,
                     "sample": w.sample or ours[:MAX_SEEN], "secrets": w.secrets, "errors": w.errors}
    rep["info"]["other_entries"] = other[:MAX_SEEN]
    rep["info"]["seen"] = seen


class DeepScratchAttack(BaseSkill):
    @property
    def manifest(self):
        return {"name": "deep-scratch"}

    def execute(self, params):
        params = params or {}
        rep = new_report()
        rep["info"]["scratch"] = _scratch()
        if int(params.get("phase", 1)) == 1:
            plant(params, rep)
        else:
            look(params, rep)
        return rep
