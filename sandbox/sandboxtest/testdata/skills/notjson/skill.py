from skillware.core.base_skill import BaseSkill


class NotJSONSkill(BaseSkill):
    @property
    def manifest(self):
        return {"name": "notjson"}

    def execute(self, params):
        if params.get("nan"):
            return {"x": float("nan")}
        return {"x": {1, 2, 3}}
