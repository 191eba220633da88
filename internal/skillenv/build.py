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
# sticky bits dropped. Prints one JSON line on stdout: {"report": ...} or
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


def _copy(src, dst_fd, budget):
    # Copies the tree at src into the directory dst_fd without following
    # any link in src and without writing outside dst_fd.
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        budget[0] -= 1
        if budget[0] < 0:
            raise _TooMany()
        st = os.lstat(e.path)
        mode = stat.S_IMODE(st.st_mode) & 0o755
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(e.path), e.name, dir_fd=dst_fd)
        elif stat.S_ISDIR(st.st_mode):
            os.mkdir(e.name, 0o700, dir_fd=dst_fd)
            fd = os.open(e.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dst_fd)
            try:
                _copy(e.path, fd, budget)
                os.chmod(fd, mode | 0o500)
            finally:
                os.close(fd)
        elif stat.S_ISREG(st.st_mode):
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


def _compiled(site, target):
    # Files of native code in what pip installed for a target: a wheel
    # tagged pure that holds them is not pure.
    owner = {}
    for d in sorted(os.listdir(site)):
        if not d.endswith(".dist-info"):
            continue
        try:
            with open(os.path.join(site, d, "RECORD"), encoding="utf-8") as f:
                for line in f:
                    owner[os.path.normpath(line.split(",", 1)[0])] = d[: -len(".dist-info")]
        except OSError:
            pass
    found = {}
    for root, dirs, files in os.walk(site):
        dirs.sort()
        for n in sorted(files):
            if _COMPILED.search(n):
                rel = os.path.relpath(os.path.join(root, n), site)
                found.setdefault(owner.get(os.path.normpath(rel), "(no distribution)"), []).append(rel)
    if not found:
        return ""
    return "%s runs only pure Python: %s" % (target["name"], "; ".join(
        "%s holds compiled code (%s) although its wheel is tagged pure" % (dist.replace("-", " ", 1), ", ".join(files[:3]))
        for dist, files in sorted(found.items())))


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
        _copy(env_dir, out_fd, [spec["max_files"]])
    except _TooMany:
        print(json.dumps({"error": "the environment has more than %d files" % spec["max_files"]}))
        return 1
    except Exception as e:  # reported, not raised: the host reads stdout
        _kill_others()
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
        return 1
    print(json.dumps({"report": data}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
