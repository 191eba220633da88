# skillbox: the per-call cost of an untrusted environment (measure_linux.go).
# Run in the skill's jail, as pid 1, by the environment's base interpreter
# with -I -S -B: argv: measure.py BUNDLE RUNS PYTHON, PYTHON the
# environment's bin/python.
#
# Each run is a fresh interpreter (the same python, -I -S -B) that makes
# PYTHON its sys.executable, as the harness does, and then does
# what a call's own process does for an environment the operator did not
# trust: process site (the environment's site directory, .pth files,
# sitecustomize), then import the skill's third-party packages. The
# skill's own code never runs: its files are parsed (ast) for their
# imports; a name counts when it is not the standard library's, not the
# bundle's own and found in the environment (sys.prefix). Prints one JSON
# line: the median run's times and the modules.
import json
import os
import subprocess
import sys

CHILD = r'''
import ast, importlib.util, json, os, sys, time
t0 = time.perf_counter()
sys.executable = sys.argv[2]  # site finds the environment's pyvenv.cfg beside it
import site
site.main()
t1 = time.perf_counter()
bundle = sys.argv[1]
stdlib = getattr(sys, "stdlib_module_names", frozenset(sys.builtin_module_names))
local, names, files = set(), set(), 0
for dirpath, dirnames, filenames in os.walk(bundle):
    dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
    if dirpath == bundle:
        local |= set(dirnames)
    for f in sorted(filenames):
        if not f.endswith(".py"):
            continue
        if dirpath == bundle:
            local.add(f[:-3])
        files += 1
        path = os.path.join(dirpath, f)
        if files > 500 or os.path.getsize(path) > (4 << 20):
            continue
        try:
            with open(path, "rb") as fh:
                tree = ast.parse(fh.read(), path)
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.partition(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.partition(".")[0])
prefix = sys.prefix + os.sep
mods = []
for n in sorted(names - local - set(stdlib) - {"skillware", "__future__"}):
    try:
        spec = importlib.util.find_spec(n)
    except (ImportError, ValueError):
        continue
    where = (spec and (spec.origin or next(iter(spec.submodule_search_locations or []), None))) or ""
    if sys.prefix != sys.base_prefix and where.startswith(prefix):
        mods.append(n)
t2 = time.perf_counter()
failed = {}
for n in mods:
    try:
        __import__(n)
    except BaseException as e:
        failed[n] = "%s: %s" % (type(e).__name__, str(e)[:200])
t3 = time.perf_counter()
sys.stdout.write(json.dumps({"site": t1 - t0, "imports": t3 - t2, "modules": mods, "failed": failed}) + "\n")
'''


def main():
    bundle, runs, python = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    results = []
    for _ in range(runs):
        p = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", CHILD, bundle, python],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lines = p.stdout.decode("utf-8", "replace").strip().splitlines()
        if p.returncode != 0 or not lines:
            err = p.stderr.decode("utf-8", "replace").strip().splitlines()
            print(json.dumps({"error": "the measuring interpreter exited with status %d: %s" % (p.returncode, err[-1] if err else "")}))
            return 0
        results.append(json.loads(lines[-1]))
    results.sort(key=lambda r: r["site"] + r["imports"])
    print(json.dumps(results[len(results) // 2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
