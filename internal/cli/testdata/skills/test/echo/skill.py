import os
from skillware.core.base_skill import BaseSkill

class Echo(BaseSkill):
    @property
    def manifest(self):
        return {"name": "echo"}

    def execute(self, params):
        print("echo says hi")
        return {"params": params, "env": sorted(os.environ), "token": self.credential("ECHO_TOKEN")}
