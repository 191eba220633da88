from skillware.core.base_skill import BaseSkill


class Raises(BaseSkill):
    @property
    def manifest(self):
        return {}

    def execute(self, params):
        print("checked the address")
        if params.get("long"):
            raise ValueError("m" * params["long"])
        raise ValueError("bad wallet address")
