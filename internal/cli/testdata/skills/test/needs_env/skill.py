from skillware.core.base_skill import BaseSkill

class NeedsEnv(BaseSkill):
    @property
    def manifest(self):
        return {}

    def execute(self, params):
        return {"token_length": len(self.credential("NEEDS_TOKEN") or "")}
