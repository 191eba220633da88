from skillware.core.base_skill import BaseSkill


class BigResultSkill(BaseSkill):
    @property
    def manifest(self):
        return {"name": "bigresult"}

    def execute(self, params):
        return {"blob": "x" * int(params.get("bytes", 1024))}
