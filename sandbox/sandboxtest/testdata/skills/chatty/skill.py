import sys

from skillware.core.base_skill import BaseSkill


class ChattySkill(BaseSkill):
    @property
    def manifest(self):
        return {"name": "chatty"}

    def execute(self, params):
        out = params.get("stdout", "")
        err = params.get("stderr", "")
        n = int(params.get("repeat", 1))
        for _ in range(n):
            sys.stdout.write(out)
            sys.stderr.write(err)
        sys.stdout.flush()
        sys.stderr.flush()
        return {"ok": True}
