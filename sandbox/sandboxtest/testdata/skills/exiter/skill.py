import os
import signal
import sys

from skillware.core.base_skill import BaseSkill


class ExiterSkill(BaseSkill):
    @property
    def manifest(self):
        return {"name": "exiter"}

    def execute(self, params):
        sys.stderr.write("about to exit\n")
        sys.stderr.flush()
        if params.get("signal"):
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(int(params.get("code", 3)))
