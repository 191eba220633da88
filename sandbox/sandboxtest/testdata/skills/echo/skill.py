import os

from skillware.core.base_skill import BaseSkill


class EchoSkill(BaseSkill):
    @property
    def manifest(self):
        return {"name": "echo"}

    def execute(self, params):
        cred = None
        if hasattr(self, "credential"):
            cred = self.credential(params.get("credential", "API_KEY"))
        return {
            "params": params,
            "config": dict(self.config or {}),
            "credential": cred,
            "env": {k: os.environ.get(k) for k in params.get("env", [])},
            "env_names": sorted(os.environ),
        }
