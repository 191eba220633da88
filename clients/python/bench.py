"""Per-call cost of the Python client's ways to reach skillbox.

    python3 clients/python/bench.py [--skillbox PATH] [--calls N] [--rounds R]

Times SkillLoader.load_skill(id)["execute"](params) with a CLIClient
(`skillbox run` per call) and a StdioClient (one `skillbox serve --stdio`
child), calls back to back and --gap apart, beside the same skill's
execute() imported into this process, as Skillware's own loader runs it
(no sandbox: the floor). Modes alternate round by round; the table gives
p50s, their distance from the floor and their ratio to CLIClient's, the
baseline. It reports and never fails on slowness; the unit tests run it
once with two calls (test_bench.py) so that it keeps working. Run it with
the interpreter the sandboxes use (SKILLBOX_PYTHON, default
/usr/bin/python3) so that the floor is that interpreter's.
"""

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

from skillbox import CLIClient, SkillLoader, StdioClient  # noqa: E402

SKILL = "text/word_stats"
PARAMS = {"text": "The quick brown fox. The lazy dog!", "top": 3}


def in_process(skill_dir):
    """The skill's execute, imported here the way Skillware's loader does
    (a stand-in BaseSkill for its one import)."""
    base = types.ModuleType("skillware.core.base_skill")

    class BaseSkill:
        def __init__(self, config=None):
            self.config = config or {}

    base.BaseSkill = BaseSkill
    for name in ("skillware", "skillware.core"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["skillware.core.base_skill"] = base
    spec = importlib.util.spec_from_file_location("bench_skill", os.path.join(skill_dir, "skill.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cls = next(v for v in vars(mod).values() if isinstance(v, type) and issubclass(v, BaseSkill) and v is not BaseSkill)
    return cls().execute


def timed(fn, calls, gap):
    out = []
    for _ in range(calls):
        if gap:
            time.sleep(gap)
        t = time.perf_counter()
        fn(PARAMS)
        out.append((time.perf_counter() - t) * 1000)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skillbox", default=os.environ.get("SKILLBOX_BIN", "skillbox"))
    ap.add_argument("--calls", type=int, default=10, help="calls per mode and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--gap", type=float, default=0.25, help="seconds before each spaced call")
    args = ap.parse_args(argv)
    os.environ.setdefault("SKILLBOX_PYTHON", "/usr/bin/python3")

    stdio = StdioClient(args.skillbox)
    modes = {
        "in-process execute (floor)": in_process(os.path.join(REPO, "examples", "skills", SKILL)),
        "StdioClient (one serve --stdio)": SkillLoader(stdio).load_skill(SKILL)["execute"],
        "CLIClient (skillbox run per call)": SkillLoader(CLIClient(args.skillbox)).load_skill(SKILL)["execute"],
    }
    samples = {(m, g): [] for m in modes for g in (0, args.gap)}
    try:
        for fn in modes.values():
            fn(PARAMS)  # warm: the child's start, the caches
        for r in range(args.rounds):
            for (m, g), s in samples.items():
                s += timed(modes[m], args.calls, g)
            print("round %d/%d" % (r + 1, args.rounds), file=sys.stderr)
    finally:
        stdio.close()

    load = os.getloadavg()
    print("`python3 clients/python/bench.py --calls %d --rounds %d`, %s, skill %s, %s, %d cores, load %.2f %.2f %.2f after"
          % (args.calls, args.rounds, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), SKILL,
             _python(), os.cpu_count(), *load))
    print()
    names = list(modes)
    print("| mode | calls | p50 ms | p90 ms | p50 − in-process, ms | p50 / CLIClient's |")
    print("|---|---|---:|---:|---:|---:|")
    for g in (0, args.gap):
        base = statistics.median(samples[(names[0], g)])
        cli = statistics.median(samples[(names[2], g)])
        for m in names:
            s = sorted(samples[(m, g)])
            p50, p90 = statistics.median(s), s[min(len(s) - 1, int(len(s) * 0.9))]
            when = "back to back" if not g else "%gms apart" % (g * 1000)
            print("| %s | %s | %.2f | %.2f | %+.2f | %.3f× |" % (m, when, p50, p90, p50 - base, p50 / cli))


def _python():
    py = os.environ["SKILLBOX_PYTHON"]
    try:
        v = subprocess.run([py, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True).stdout
    except OSError:
        v = "?"
    return "sandboxes on %s %s, this process on %s" % (py, v.strip(), sys.version.split()[0])


if __name__ == "__main__":
    main()
