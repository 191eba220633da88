"""A PEP 517 build backend in the standard library only.

The client has no dependencies, and installing it must not need any either:
hosts that run agents often have no package index (and setuptools builds
need the `wheel` package). This backend builds the one pure-Python wheel the
client is, from the metadata in pyproject.toml.
"""
import base64
import hashlib
import os
import zipfile

try:
    import tomllib  # Python 3.11+
except ImportError:  # pragma: no cover - older Pythons
    tomllib = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "skillbox"


def _project():
    if tomllib is None:
        return {"name": "skillbox", "version": "0.1.0",
                "description": "", "requires-python": ">=3.9"}
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def _metadata(p):
    lines = ["Metadata-Version: 2.1", "Name: " + p["name"], "Version: " + p["version"]]
    if p.get("description"):
        lines.append("Summary: " + p["description"])
    if p.get("requires-python"):
        lines.append("Requires-Python: " + p["requires-python"])
    return "\n".join(lines) + "\n"


def _dist_info(p):
    return "%s-%s.dist-info" % (p["name"], p["version"])


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    p = _project()
    d = os.path.join(metadata_directory, _dist_info(p))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "METADATA"), "w") as f:
        f.write(_metadata(p))
    return _dist_info(p)


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (name, digest, len(data))


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    p = _project()
    name = "%s-%s-py3-none-any.whl" % (p["name"], p["version"])
    info = _dist_info(p)
    files = []
    pkg = os.path.join(ROOT, PACKAGE)
    for entry in sorted(os.listdir(pkg)):
        if entry.endswith(".py"):
            with open(os.path.join(pkg, entry), "rb") as f:
                files.append(("%s/%s" % (PACKAGE, entry), f.read()))
    files.append((info + "/METADATA", _metadata(p).encode()))
    files.append((info + "/WHEEL", b"Wheel-Version: 1.0\nGenerator: skillbox-build\n"
                  b"Root-Is-Purelib: true\nTag: py3-none-any\n"))
    record = [_record_line(n, d) for n, d in files] + [info + "/RECORD,,"]
    files.append((info + "/RECORD", ("\n".join(record) + "\n").encode()))
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in files:
            z.writestr(n, d)
    return name
