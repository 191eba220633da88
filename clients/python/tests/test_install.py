"""The package installs with pip from the repository path, offline."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _venv_available():
    try:
        import ensurepip  # noqa: F401
        import venv  # noqa: F401
    except ImportError:
        return False
    return True


@unittest.skipUnless(_venv_available(), "this Python has no venv/ensurepip (Debian: python3-venv)")
class InstallTest(unittest.TestCase):
    def test_pip_install_from_path(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        env_dir = os.path.join(tmp, "venv")
        subprocess.run([sys.executable, "-m", "venv", env_dir], check=True)
        py = os.path.join(env_dir, "bin", "python")
        # --no-index: nothing may come from a package index.
        subprocess.run([py, "-m", "pip", "install", "--no-index", "-q", HERE], check=True)
        out = subprocess.run([py, "-c", "import skillbox; print(skillbox.SkillLoader.__name__)"],
                             cwd=tmp, check=True, capture_output=True, text=True).stdout
        self.assertEqual(out.strip(), "SkillLoader")


if __name__ == "__main__":
    unittest.main()
