import contextlib
import io
import os
import sys
import unittest

from support import binary, env

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bench  # noqa: E402


class BenchTest(unittest.TestCase):
    def test_runs(self):
        """The benchmark runs and prints its table (two calls a mode; the
        figures are not checked: a test asserts no speed)."""
        exe, new, saved = binary(), env(SKILLWARE_SKILL_PATH=""), dict(os.environ)
        out = io.StringIO()
        try:
            os.environ.clear()
            os.environ.update(new)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                bench.main(["--skillbox", exe, "--calls", "1", "--rounds", "2", "--gap", "0.01"])
        finally:
            os.environ.clear()
            os.environ.update(saved)
        table = out.getvalue()
        for mode in ("in-process execute (floor)", "StdioClient (one serve --stdio)", "CLIClient (skillbox run per call)"):
            self.assertEqual(table.count("| " + mode + " |"), 2, table)


if __name__ == "__main__":
    unittest.main()
