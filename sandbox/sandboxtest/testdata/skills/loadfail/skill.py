import sys

from skillware.core.base_skill import BaseSkill

# Output a skill writes while it is imported, before it fails to load,
# belongs to the error a caller gets.
print("import-out 5e1c")
sys.stderr.write("import-err 5e1c\n")
raise RuntimeError("load-fails-4b1d")


class LoadFailSkill(BaseSkill):
    def execute(self, params):
        return {}
