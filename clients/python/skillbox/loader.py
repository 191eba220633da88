"""SkillLoader: Skillware's loader, with execution through skillbox."""

from . import schema
from .client import SkillboxError, client_from_env


class RemoteSkill:
    """A skill whose execute(params) runs in a skillbox sandbox.

    It stands in for the BaseSkill instance Skillware agents create:
    ``manifest`` is the manifest dict, ``execute`` returns the skill's
    result dict or raises SkillboxError. ``last_call`` holds the whole
    success envelope of the latest call (skill digest, backend, duration,
    warnings).
    """

    def __init__(self, skill_id, manifest, client, config=None, ref=None, digest=None):
        self.id = skill_id
        self.manifest = manifest
        self.config = config or {}
        self._client = client
        # What the caller loaded (an id or a folder path: a path must stay
        # one, or skillbox would resolve the id through its roots) and
        # the digest skillbox described for it.
        self._ref = ref or skill_id
        self._digest = digest
        self.last_call = None

    def execute(self, params=None):
        env = self._client.call(self._ref, params or {})
        ran = (env.get("skill") or {}).get("digest")
        if self._digest and ran != self._digest:
            raise SkillboxError(
                "denied",
                "skillbox ran %s at digest %s, not the %s that load_skill described; "
                "the skill changed since it was loaded: load it again" % (self._ref, ran, self._digest),
                envelope=env,
            )
        self.last_call = env
        return env["result"]

    def __call__(self, params=None):
        return self.execute(params)

    def __repr__(self):
        return "RemoteSkill(%r)" % self.id


class _ClientOrInstance:
    """Lets SkillLoader methods run on the class (Skillware style, with a
    client from the environment) or on an instance with its own client."""

    def __init__(self, fn):
        self.fn = fn

    def __get__(self, obj, cls):
        def bound(*args, **kwargs):
            return self.fn(obj if obj is not None else cls(), *args, **kwargs)

        bound.__name__, bound.__doc__ = self.fn.__name__, self.fn.__doc__
        return bound


class SkillLoader:
    """Loads skills by id (category/name) through skillbox.

    ``SkillLoader.load_skill(id)`` uses the environment (SKILLBOX_URL and
    SKILLBOX_TOKEN for a server, else SKILLBOX_BIN and SKILLBOX_RUN_ARGS for
    the command line); ``SkillLoader(client).load_skill(id)`` uses client.
    """

    def __init__(self, client=None):
        self.client = client or client_from_env()

    @_ClientOrInstance
    def load_skill(self, skill_id):
        """Return a Skillware-shaped bundle: id, manifest, instructions,
        card, plus ``skill`` (a RemoteSkill), ``execute`` (its execute) and
        ``class`` (builds RemoteSkills, for code that instantiates the
        skill class itself). No skill code runs in this process.

        skill_id is an id or a skill folder's path; calls run what it names
        (a path stays a path), and a call that ran other code than the
        digest described here (the skill changed since) raises kind
        ``denied``."""
        info = self.client.inspect(skill_id)
        sid = info.get("id", skill_id)
        manifest = info.get("manifest") or {}
        digest = info.get("digest")
        client = self.client
        skill = RemoteSkill(sid, manifest, client, ref=skill_id, digest=digest)

        def make(config=None):
            return RemoteSkill(sid, manifest, client, config, ref=skill_id, digest=digest)

        return {
            "id": sid,
            "manifest": manifest,
            "instructions": info.get("instructions") or "",
            "card": info.get("card") or {},
            "digest": info.get("digest"),
            "tier": info.get("tier"),
            "skill": skill,
            "execute": skill.execute,
            "class": make,
        }

    @_ClientOrInstance
    def list_skills(self):
        """The skills skillbox can run: dicts with id, version, description."""
        return self.client.list()

    to_claude_tool = staticmethod(schema.to_claude_tool)
    to_openai_tool = staticmethod(schema.to_openai_tool)
    to_gemini_tool = staticmethod(schema.to_gemini_tool)
    to_ollama_prompt = staticmethod(schema.to_ollama_prompt)
    to_mcp_tool = staticmethod(schema.to_mcp_tool)
