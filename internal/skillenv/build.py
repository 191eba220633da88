# skillbox environment build: runs as pid 1 of a fresh jail (see build.go).
#
# stdin: SPEC_JSON (not an argument: a long list of requirements makes it
# longer than the kernel lets one argument be)
#   dir        the environment's final path (an empty, size-capped tmpfs)
#   out_fd     a descriptor of the host folder that receives the result;
#              never inherited by pip, and this process is not dumpable,
#              so nothing pip runs can reach it through /proc
#   pip        pip's wheel (Debian's python3-pip-whl), run from the zip
#   args       pip install's options and requirements, decided by skillbox
#   requirements_file
#              lines of a requirements file (a pinned set in hash-checking
#              mode: "name==version --hash=sha256:HEX"); when not empty,
#              written to the scratch folder and given to pip with -r
#   max_files  the most entries the environment may have
#   max_bytes  the most bytes its files may hold, each file at its full
#              size (a sparse file's holes count, every hard link counts)
#   max_bytes_text
#              max_bytes as the host writes sizes, for the error
#   target     when set, {"name", "site"}: the environment is for another
#              interpreter (Pyodide), which takes only pure-Python wheels;
#              pip (run from a virtual environment in the scratch folder)
#              installs into site with --target and the target's tags
#              (build.go's pipArgs); pip's debug log says which files it
#              skipped, so a requirement that has only compiled wheels or
#              sdists fails naming them, and a wheel tagged pure that holds
#              compiled code fails too
#
# Creates a virtual environment at dir with the stdlib's venv (no pip in
# it), installs into it with pip (whose --report says what was resolved),
# then, as pid 1, kills every other process of the jail, so that nothing a
# package ran is still writing, and copies the environment into out_fd:
# directories, regular files and symbolic links only, setuid, setgid and
# sticky bits dropped. The build fails when a package replaced what venv
# made for the interpreter's start (bin/python*, pyvenv.cfg), left a link
# that leads out of the environment, or put a file where the host writes
# its own (skillbox-env.json), or when the files' sizes add up to more
# than max_bytes (the copy writes a hole as zeros). Prints one JSON line on stdout: {"report": ...} or
# {"error": ...}; pip's own output goes to stderr.
import ctypes
import json
import os
import re
import signal
import stat
import subprocess
import sys
import urllib.parse
import venv


def _nondumpable():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE)")


def _kill_others():
    # Only pid 1 of a pid namespace may do this: kill(-1) from it reaches
    # every other process of the namespace and nothing outside it.
    if os.getpid() != 1:
        return
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


class _TooMany(Exception):
    pass


class _Refused(Exception):
    # The environment holds something skillbox does not accept; the
    # message says what, and which package put it there when its RECORD
    # tells.
    pass


# The names the host writes into the environment's folder itself.
_HOST_NAMES = ("skillbox-env.json",)


class _Budget:
    def __init__(self, files, size, size_text):
        self.files, self.size, self.size_text = files, size, size_text


def _link_ok(rel, target, venv_links):
    # A link venv made, or one that stays inside the environment: a
    # relative target without "..", so it can only lead down from its
    # folder (the host follows some of the environment's paths when it
    # shows them in a jail).
    if venv_links.get(rel) == target:
        return True
    return not os.path.isabs(target) and ".." not in target.split("/") and target != ""


def _copy(src, dst_fd, budget, root=None, venv_links=None, owners=None):
    # Copies the tree at src into the directory dst_fd without following
    # any link in src and without writing outside dst_fd. Every regular
    # file counts at its st_size, so that neither a sparse file (whose
    # holes the copy writes as zeros) nor hard links to one file (each
    # copied) make the host's copy larger than budget.size.
    root = src if root is None else root
    venv_links = venv_links or {}
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        budget.files -= 1
        if budget.files < 0:
            raise _TooMany()
        rel = os.path.relpath(e.path, root)
        if rel in _HOST_NAMES:
            raise _Refused("the environment holds %s%s, a name skillbox writes itself" % (rel, _by(e.path, owners)))
        st = os.lstat(e.path)
        mode = stat.S_IMODE(st.st_mode) & 0o755
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(e.path)
            if not _link_ok(rel, target, venv_links):
                raise _Refused("the environment holds a symbolic link %s -> %s%s, which leads out of it (only links to a relative path without \"..\" are kept)" % (rel, target, _by(e.path, owners)))
            os.symlink(target, e.name, dir_fd=dst_fd)
        elif stat.S_ISDIR(st.st_mode):
            os.mkdir(e.name, 0o700, dir_fd=dst_fd)
            fd = os.open(e.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dst_fd)
            try:
                _copy(e.path, fd, budget, root, venv_links, owners)
                os.chmod(fd, mode | 0o500)
            finally:
                os.close(fd)
        elif stat.S_ISREG(st.st_mode):
            budget.size -= st.st_size
            if budget.size < 0:
                raise _Refused("the environment's files add up to more than its size limit of %s (a sparse file counts at its full size, and so does every hard link)" % budget.size_text)
            src_fd = os.open(e.path, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                out = os.open(e.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dst_fd)
                try:
                    while True:
                        n = os.sendfile(out, src_fd, None, 1 << 20)
                        if n == 0:
                            break
                    os.chmod(out, mode | 0o400)
                    # The modification time is kept: pip's .pyc files name
                    # their source's, and with another one every import
                    # in the read-only environment would compile again.
                    os.utime(out, ns=(st.st_mtime_ns, st.st_mtime_ns))
                finally:
                    os.close(out)
            finally:
                os.close(src_fd)
        # Anything else (a device node, a fifo, a socket) is left out.


def _norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _not_pure(log, target):
    # What pip skipped for each requirement it found nothing for, from its
    # debug log ("Skipping link: REASON: URL (from ...)").
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return ""
    failed = []
    for m in re.finditer(r"No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)", text):
        if _norm(m.group(1)) not in failed:
            failed.append(_norm(m.group(1)))
    skipped = []
    for m in re.finditer(r"Skipping link: (.*): (\S+)(?: \(from [^\n]*)?$", text, re.M):
        reason, url = m.group(1), m.group(2)
        name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        t = re.search(r"none of the wheel's tags \((.*)\) are compatible", reason)
        if t:
            reason = "tags " + t.group(1)
        elif reason.startswith("No sources permitted"):
            reason = "a source distribution"
        entry = "%s (%s)" % (name, reason)
        if (name, entry) not in skipped:
            skipped.append((name, entry))
    parts = []
    for req in failed:
        files = [e for n, e in skipped if _norm(n).startswith(req + "-")]
        if files:
            parts.append("%s has no pure-Python wheel, only %s" % (req, ", ".join(files)))
    if not parts:
        return ""
    return "%s runs only pure-Python wheels (py3-none-any): %s" % (target["name"], "; ".join(parts))


_COMPILED = re.compile(r"\.(so|pyd|dylib)(\.[0-9.]+)?$")


def _owners(site):
    # The distribution that installed each file, by absolute path, from the
    # RECORD files in site (their paths are relative to it; a script's is
    # ../../../bin/NAME).
    owner = {}
    try:
        names = sorted(os.listdir(site))
    except OSError:
        return owner
    for d in names:
        if not d.endswith(".dist-info"):
            continue
        try:
            with open(os.path.join(site, d, "RECORD"), encoding="utf-8") as f:
                for line in f:
                    path = os.path.normpath(os.path.join(site, line.split(",", 1)[0]))
                    owner[path] = d[: -len(".dist-info")]
        except OSError:
            pass
    return owner


def _by(path, owners):
    # " (installed by NAME VERSION)" when a RECORD lists path, else "".
    dist = (owners or {}).get(os.path.normpath(path))
    return " (installed by %s)" % dist.replace("-", " ", 1) if dist else ""


def _compiled(site, target):
    # Files of native code in what pip installed for a target: a wheel
    # tagged pure that holds them is not pure.
    owner = _owners(site)
    found = {}
    for root, dirs, files in os.walk(site):
        dirs.sort()
        for n in sorted(files):
            if _COMPILED.search(n):
                p = os.path.join(root, n)
                rel = os.path.relpath(p, site)
                found.setdefault(owner.get(os.path.normpath(p), "(no distribution)"), []).append(rel)
    if not found:
        return ""
    return "%s runs only pure Python: %s" % (target["name"], "; ".join(
        "%s holds compiled code (%s) although its wheel is tagged pure" % (dist.replace("-", " ", 1), ", ".join(files[:3]))
        for dist, files in sorted(found.items())))


def _start_entry(name):
    # The names in bin/ that decide how the environment's python starts:
    # its links to the base interpreter and what CPython reads beside them
    # (pyvenv.cfg, NAME._pth).
    return name.startswith("python") or name == "pyvenv.cfg"


def _fingerprint(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return ("missing",)
    if stat.S_ISLNK(st.st_mode):
        return ("link", os.readlink(path))
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            return ("file", f.read(1 << 16))
    return ("other", stat.S_IFMT(st.st_mode))


def _start_files(env_dir):
    # What the environment holds for its interpreter's start, by path
    # relative to env_dir: bin/python* and pyvenv.cfg.
    made = {"pyvenv.cfg": _fingerprint(os.path.join(env_dir, "pyvenv.cfg"))}
    bindir = os.path.join(env_dir, "bin")
    for n in sorted(os.listdir(bindir)) if os.path.isdir(bindir) else []:
        if _start_entry(n):
            made["bin/" + n] = _fingerprint(os.path.join(bindir, n))
    return made


def _start_changed(env_dir, made, owners):
    # An error naming what a package changed of what venv made for the
    # interpreter's start, or "". skillbox never runs the environment's
    # python (it starts the base interpreter), but a python there that is
    # not the base's link would run the package's code for anything that
    # starts it, so such an environment is refused rather than kept.
    now = _start_files(env_dir)
    changed = []
    for rel in sorted(set(made) | set(now)):
        if made.get(rel, ("missing",)) != now.get(rel, ("missing",)):
            verb = "added" if rel not in made else "replaced"
            changed.append("%s %s%s" % (verb, rel, _by(os.path.join(env_dir, rel), owners)))
    if not changed:
        return ""
    return ("a package changed what venv made for the environment's interpreter (%s): "
            "the environment's bin/python* and pyvenv.cfg must stay the base interpreter's; "
            "remove the package that ships them from the requirements" % "; ".join(changed))


def _site_packages(env_dir):
    return os.path.join(env_dir, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")


def main():
    spec = json.load(sys.stdin)
    _nondumpable()
    out_fd = spec["out_fd"]
    os.set_inheritable(out_fd, False)
    env_dir = spec["dir"]
    target = spec.get("target")
    tmp = os.environ.get("TMPDIR", "/tmp")
    try:
        # A target's packages go to its site folder (--target); pip runs
        # from a virtual environment in the scratch folder.
        venv_dir = os.path.join(tmp, "skillbox-venv") if target else env_dir
        venv.EnvBuilder(with_pip=False, symlinks=True).create(venv_dir)
        made = {} if target else _start_files(env_dir)
        report = os.path.join(tmp, "skillbox-pip-report.json")
        python = os.path.join(venv_dir, "bin", "python")
        args = list(spec["args"])
        log = os.path.join(tmp, "skillbox-pip.log")
        if target:
            if os.path.lexists(log):
                os.unlink(log)  # pip appends to its log
            args += ["--log", log]
        lines = spec.get("requirements_file") or []
        if lines:
            reqs = os.path.join(os.environ.get("TMPDIR", "/tmp"), "skillbox-pinned.txt")
            with open(reqs, "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))
            args += ["-r", reqs]
        pip = subprocess.run([python, os.path.join(spec["pip"], "pip"), "install", "--report", report] + args,
                             stdin=subprocess.DEVNULL, stdout=sys.stderr, close_fds=True)
        _kill_others()
        if pip.returncode != 0:
            why = _not_pure(log, target) if target else ""
            if why:
                print(json.dumps({"error": why}))
                return 1
            raise RuntimeError("pip install exited with status %d" % pip.returncode)
        with open(report, "rb") as f:
            data = json.load(f)
        if target:
            os.makedirs(target["site"], exist_ok=True)  # nothing to install
            why = _compiled(target["site"], target)
            if why:
                print(json.dumps({"error": why}))
                return 1
        site = target["site"] if target else _site_packages(env_dir)
        owners = _owners(site)
        venv_links = {}
        if not target:
            why = _start_changed(env_dir, made, owners)
            if why:
                print(json.dumps({"error": why}))
                return 1
            venv_links = {rel: fp[1] for rel, fp in made.items() if fp[0] == "link"}
        budget = _Budget(spec["max_files"], spec["max_bytes"], spec["max_bytes_text"])
        _copy(env_dir, out_fd, budget, venv_links=venv_links, owners=owners)
    except _TooMany:
        print(json.dumps({"error": "the environment has more than %d files" % spec["max_files"]}))
        return 1
    except _Refused as e:
        print(json.dumps({"error": str(e)}))
        return 1
    except Exception as e:  # reported, not raised: the host reads stdout
        _kill_others()
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
        return 1
    print(json.dumps({"report": data}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
