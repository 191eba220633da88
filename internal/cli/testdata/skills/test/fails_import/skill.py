import sys
from skillware.core.base_skill import BaseSkill

print("reading settings")
sys.stderr.write("settings.toml is missing\n")
raise RuntimeError("no settings")


class FailsImport(BaseSkill):
    def execute(self, params):
        return {}
