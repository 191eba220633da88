import os
import time

from skillware.core.base_skill import BaseSkill


class Sleep(BaseSkill):
    @property
    def manifest(self):
        return {}

    def execute(self, params):
        if params.get("pidfile"):
            with open(params["pidfile"] + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(params["pidfile"] + ".tmp", params["pidfile"])
        time.sleep(float(params.get("seconds", 0)))
        return {"slept": params.get("seconds", 0)}
