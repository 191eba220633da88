"""Fixture: an async-only skill (aexecute, no execute) with an optional
credential read through BaseSkill.credential()."""

import asyncio
import hashlib
import hmac

from skillware.core.base_skill import BaseSkill


class AsyncDigestSkill(BaseSkill):
    @property
    def manifest(self):
        return {"name": "async_digest", "version": "0.1.0"}

    async def _digest(self, index, chunk, key, algorithm):
        # Later chunks yield first, so gather's ordering is what keeps order.
        await asyncio.sleep(0.001 * (3 - index % 3))
        data = chunk.encode("utf-8")
        if key is None:
            return hashlib.new(algorithm, data).hexdigest()
        return hmac.new(key.encode("utf-8"), data, algorithm).hexdigest()

    async def aexecute(self, params):
        key = self.credential("DIGEST_KEY")
        algorithm = params.get("algorithm", "sha256")
        digests = await asyncio.gather(
            *(self._digest(i, c, key, algorithm) for i, c in enumerate(params["chunks"]))
        )
        combined = hashlib.new(algorithm, "".join(digests).encode("ascii")).hexdigest()
        return {
            "keyed": key is not None,
            "algorithm": algorithm,
            "digests": list(digests),
            "combined": combined,
        }
