from skillware.core.base_skill import BaseSkill


def _deep(msg, n):
    if n == 0:
        raise ValueError(msg)
    _deep(msg, n - 1)


class RaiserSkill(BaseSkill):
    @property
    def manifest(self):
        return {"name": "raiser"}

    def execute(self, params):
        if params.get("say"):
            import sys
            print("before-raise-out", params["say"])
            sys.stderr.write("before-raise-err %s\n" % params["say"])
        _deep(params.get("message", "boom"), 3)
