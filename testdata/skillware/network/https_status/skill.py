import json
import urllib.error
import urllib.request

from skillware.core.base_skill import BaseSkill


class HttpsStatus(BaseSkill):
    """GETs origin + path with the client's default certificate checks."""

    def execute(self, params):
        url = params["origin"] + params["path"]
        try:
            import requests
        except ImportError:
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    return {"status": r.status, "body": json.load(r)}
            except urllib.error.HTTPError as e:
                return {"status": e.code, "body": json.load(e)}
        r = requests.get(url, timeout=10)
        return {"status": r.status_code, "body": r.json()}
