import os
from skillware.core.base_skill import BaseSkill

class Exits(BaseSkill):
    @property
    def manifest(self):
        return {}

    def execute(self, params):
        if params.get("say"):
            import sys
            print("about to exit", flush=True)
            sys.stderr.write("fatal: giving up\n")
            sys.stderr.flush()
        os._exit(3)
