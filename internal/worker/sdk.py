# skillbox's stand-in for the Skillware SDK (the `skillware` package).
#
# worker.Harness splices this file into harness.py (at its "@@SDK@@" line), so
# the harness stays one script for `python3 -c`. Everything here is named
# _sdk*/_Sdk* to keep out of the harness's way.
#
# The rule: when the skill's environment has a real `skillware` package
# (importable once site is processed), every skillware.* module comes from
# it and this stand-in provides none, not even a module the real one lacks.
# Otherwise the stand-in provides the modules of _SDK_MODULES, with the
# names and behaviour a skill sees in Skillware 0.5.6 (BaseSkill with
# credential() and aexecute(), secret providers, mail settings). It is
# written from Skillware's documented behaviour; no Skillware code is in it.
#
# Modules are built on first import by a finder placed last on
# sys.meta_path, so a skill pays only for what it imports, and any real
# `skillware` another finder sees comes first. Standard library only.
import os
import sys

_SDK_MARK = "__skillbox_stand_in__"
_sdk_state = {"manifest": {}, "base_init": None}


class SkillwareParamValidationError(ValueError):
    """Raised by BaseSkill.validate_params for params the schema refuses."""


_JSON_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list, tuple),
    "null": (type(None),),
}


def _type_ok(value, typ):
    if isinstance(typ, list):
        return any(_type_ok(value, t) for t in typ)
    py = _JSON_TYPES.get(typ)
    if py is None:
        return True
    if typ in ("integer", "number") and isinstance(value, bool):
        return False
    if typ == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, py)


class _Invalid(Exception):
    def __init__(self, path, message):
        Exception.__init__(self, message)
        self.path = path


def _simple_validate(params, schema, path=()):
    """A small JSON Schema subset (type, enum, required, properties,
    additionalProperties: false, items) for when jsonschema is not installed.
    The host already validated the params against the full schema; this only
    serves skills that call validate_params themselves."""
    if not isinstance(schema, dict):
        return
    typ = schema.get("type")
    if typ is not None and not _type_ok(params, typ):
        raise _Invalid(path, "%r is not of type %r" % (params, typ))
    if "enum" in schema and isinstance(schema["enum"], list) and params not in schema["enum"]:
        raise _Invalid(path, "%r is not one of %r" % (params, schema["enum"]))
    if isinstance(params, dict):
        for name in schema.get("required") or []:
            if name not in params:
                raise _Invalid(path, "%r is a required property" % (name,))
        props = schema.get("properties") or {}
        if not isinstance(props, dict):
            props = {}
        for name, sub in props.items():
            if name in params:
                _simple_validate(params[name], sub, path + (name,))
        if schema.get("additionalProperties") is False:
            extra = sorted(k for k in params if k not in props)
            if extra:
                raise _Invalid(path, "Additional properties are not allowed (%s %s unexpected)"
                               % (", ".join(repr(k) for k in extra), "was" if len(extra) == 1 else "were"))
    if isinstance(params, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(params):
            _simple_validate(item, schema["items"], path + (i,))


def _sdk_text(value):
    """A secret as Skillware reads one: str(value) stripped; blank is None."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _sdk_run_sync(coro):
    """Run a coroutine to completion from synchronous code. When this thread
    already runs an event loop, the coroutine gets its own loop in a worker
    thread (asyncio.run refuses to nest), as Skillware does. Pyodide has no
    threads, and its asyncio.run works from a running loop (JSPI)."""
    import asyncio

    if sys.platform == "emscripten":
        return asyncio.run(coro)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


# ---------------------------------------------------------------- modules

def _sdk_base_skill(mod):
    """skillware.core.base_skill: BaseSkill, SkillwareParamValidationError."""
    import abc

    class BaseSkill(abc.ABC):
        """Skillware's BaseSkill, as provided by skillbox."""

        def __init__(self, config=None):
            self.config = config or {}

        # Skillware declares manifest abstract; skillbox knows the bundle's
        # manifest.yaml, so a skill that does not define it still runs.
        @property
        def manifest(self):
            return self.__dict__.get("_skillbox_manifest", _sdk_state["manifest"])

        @manifest.setter
        def manifest(self, value):
            self.__dict__["_skillbox_manifest"] = value

        def credential(self, key):
            """The value of a manifest env_vars name: config first (what the
            host resolved and granted), then the environment; stripped, and
            None when unset or blank in both."""
            value = _sdk_text(self.config.get(key))
            if value is not None:
                return value
            return _sdk_env_provider.get(key)

        def execute(self, params):
            # A skill that defines only aexecute runs through this bridge.
            if type(self).aexecute is not BaseSkill.aexecute:
                return _sdk_run_sync(self.aexecute(params))
            raise NotImplementedError(
                "Skill %s must implement execute() or aexecute()." % type(self).__name__)

        async def aexecute(self, params):
            import asyncio

            if hasattr(asyncio, "to_thread"):  # 3.9+
                return await asyncio.to_thread(self.execute, params)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, self.execute, params)

        def validate_params(self, params):
            try:
                schema = (self.manifest or {}).get("parameters")
            except Exception:
                schema = None
            if not schema or not isinstance(schema, dict):
                return True
            try:
                name = (self.manifest or {}).get("name", "unknown_skill")
            except Exception:
                name = "unknown_skill"
            if not isinstance(params, dict):
                raise SkillwareParamValidationError(
                    "Skill '%s' expects parameter arguments as a JSON object (dict), got %s."
                    % (name, type(params).__name__))
            # Skillware's own wording, so skills that match on it keep working.
            try:
                import jsonschema
            except ImportError:
                jsonschema = None
            try:
                if jsonschema is not None:
                    try:
                        jsonschema.validate(instance=params, schema=schema)
                    except jsonschema.ValidationError as e:
                        raise _Invalid(tuple(e.absolute_path), e.message)
                else:
                    _simple_validate(params, schema)
            except _Invalid as e:
                where = ".".join(str(p) for p in e.path) or "(root)"
                raise SkillwareParamValidationError(
                    "Skill '%s' parameter validation failed at '%s': %s" % (name, where, e)) from None
            return True

    BaseSkill.__module__ = mod.__name__
    SkillwareParamValidationError.__module__ = mod.__name__
    mod.BaseSkill = BaseSkill
    mod.SkillwareParamValidationError = SkillwareParamValidationError
    _sdk_state["base_init"] = BaseSkill.__dict__["__init__"]


def _sdk_env(mod):
    """skillware.core.env: load_env_file."""

    def load_env_file(path=".env"):
        """A no-op: in skillbox a skill's environment is what the operator
        granted, never a .env file the skill's process reads."""
        return None

    mod.load_env_file = load_env_file


class _SdkEnvSecretProvider(object):
    """Reads os.environ: inside skillbox, the variables the operator granted."""

    def get(self, key):
        return _sdk_text(os.environ.get(key))


_sdk_env_provider = _SdkEnvSecretProvider()


def _sdk_secrets(mod):
    """skillware.core.secrets: the provider interface and the built-in
    providers. Each get(key) returns the value stripped, or None when it is
    unset or blank."""
    import typing

    @typing.runtime_checkable
    class SecretProvider(typing.Protocol):
        """Anything with get(key) -> Optional[str]."""

        def get(self, key):
            """The secret, or None when unset or blank."""

    class MappingSecretProvider(object):
        """Secrets from a mapping the host fetched beforehand."""

        def __init__(self, secrets):
            self._secrets = dict((str(k), str(v)) for k, v in secrets.items() if v is not None)

        def get(self, key):
            return _sdk_text(self._secrets.get(key))

    class CallableSecretProvider(object):
        """Secrets from a host callback, called on every get."""

        def __init__(self, fetcher):
            self._fetcher = fetcher

        def get(self, key):
            return _sdk_text(self._fetcher(key))

    def resolve_manifest_env_vars(manifest, provider):
        """{name: value} for each manifest env_vars name the provider has a
        non-blank value for (asked once per name): what a host passes as
        BaseSkill(config=...)."""
        env_vars = manifest.get("env_vars")
        if not isinstance(env_vars, dict):
            return {}
        out = {}
        for key in env_vars:
            if isinstance(key, str) and key.strip():
                value = provider.get(key)
                if value is not None:
                    out[key] = value
        return out

    def coerce_secret_provider(provider):
        """None stays None, a mapping becomes a MappingSecretProvider, a
        provider is returned as is."""
        import collections.abc

        if provider is None:
            return None
        if isinstance(provider, collections.abc.Mapping):
            return MappingSecretProvider(provider)
        return provider

    # One class with BaseSkill.credential's environment fallback.
    EnvSecretProvider = _SdkEnvSecretProvider
    EnvSecretProvider.__name__ = EnvSecretProvider.__qualname__ = "EnvSecretProvider"
    for obj in (SecretProvider, EnvSecretProvider, MappingSecretProvider, CallableSecretProvider,
                resolve_manifest_env_vars, coerce_secret_provider):
        obj.__module__ = mod.__name__
        setattr(mod, obj.__name__, obj)


def _sdk_mail_config(mod):
    """skillware.core.mail_config: the operator's mail settings (the `mail:`
    section of Skillware's global config.yaml and the project's
    .skillware.yaml, project over global) and the GMAIL_* variables that
    override them, as office/gmail_handler reads them. Reading a config file
    needs PyYAML, as it does in Skillware; with no file none is needed."""
    import re
    from pathlib import Path

    env_names = {
        "ENV_ADDRESSBOOK_PATH": "GMAIL_ADDRESSBOOK_PATH",
        "ENV_SIGNATURE_PLAIN": "GMAIL_SIGNATURE_PLAIN",
        "ENV_SIGNATURE_PATH": "GMAIL_SIGNATURE_PATH",
        "ENV_SIGNATURE_HTML_PATH": "GMAIL_SIGNATURE_HTML_PATH",
        "ENV_SCAN_STATE_PATH": "GMAIL_SCAN_STATE_PATH",
        "ENV_SEND_LEDGER_PATH": "GMAIL_SEND_LEDGER_PATH",
    }
    fields = ("addressbook_path", "signature_path", "signature_html_path",
              "signature_plain", "scan_state_path", "send_ledger_path")
    email_re = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    secret_re = re.compile(r"(APP_PASSWORD|PRIVATE_KEY|SECRET|MNEMONIC|sk-ant-|github_pat_|Bearer\s)", re.I)
    cache = []

    class MailSettings(object):
        """Optional mail paths and signature; None means not set."""

        def __init__(self, addressbook_path=None, signature_path=None, signature_html_path=None,
                     signature_plain=None, scan_state_path=None, send_ledger_path=None):
            self.addressbook_path = addressbook_path
            self.signature_path = signature_path
            self.signature_html_path = signature_html_path
            self.signature_plain = signature_plain
            self.scan_state_path = scan_state_path
            self.send_ledger_path = send_ledger_path

        def __eq__(self, other):
            return type(other) is type(self) and self.to_document_block() == other.to_document_block()

        def __repr__(self):
            return "MailSettings(%s)" % ", ".join("%s=%r" % (f, getattr(self, f)) for f in fields)

        def to_document_block(self):
            return dict((f, getattr(self, f)) for f in fields if getattr(self, f) is not None)

    def _optional_str(value):
        return _sdk_text(value)

    def parse_mail_block(raw):
        if not isinstance(raw, dict):
            return MailSettings()
        return MailSettings(**dict((f, _optional_str(raw.get(f))) for f in fields))

    def merge_mail_settings(layers):
        """Later layers win, field by field."""
        merged = MailSettings()
        for layer in layers:
            for f in fields:
                if getattr(layer, f) is not None:
                    setattr(merged, f, getattr(layer, f))
        return merged

    def _global_config_dir():
        override = os.environ.get("SKILLWARE_CONFIG_DIR", "").strip()
        if override:
            return Path(override).expanduser()
        xdg = os.environ.get("XDG_CONFIG_HOME", "").strip()
        if xdg:
            return Path(xdg).expanduser() / "skillware"
        # expanduser, unlike Path.home, never raises for a uid without a
        # home (a jail's); ~ then stays as it is.
        return Path(os.path.expanduser("~")) / ".config" / "skillware"

    def _project_config_file():
        current = Path.cwd().resolve()
        for _ in range(6):
            candidate = current / ".skillware.yaml"
            if candidate.is_file():
                return candidate
            if current.parent == current:
                break
            current = current.parent
        return None

    def _read_yaml(path):
        import yaml  # as in Skillware: its config files are YAML

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}

    def load_merged_mail_settings(*, refresh=False):
        """The mail: sections of the global then the project config file,
        merged (cached; refresh=True reads the files again)."""
        if cache and not refresh:
            return cache[0]
        paths = []
        global_path = _global_config_dir() / "config.yaml"
        if global_path.is_file():
            paths.append(global_path.resolve())
        project = _project_config_file()
        if project is not None and project.resolve() not in paths:
            paths.append(project.resolve())
        layers = []
        for p in paths:
            raw = _read_yaml(p).get("mail")
            if raw is not None:
                layers.append(parse_mail_block(raw))
        del cache[:]
        cache.append(merge_mail_settings(layers))
        return cache[0]

    def _expand(raw):
        return Path(raw).expanduser().resolve()

    def _env(name):
        return os.environ.get(env_names[name], "").strip()

    def default_global_addressbook_path():
        return _global_config_dir() / "addressbook.yaml"

    def default_global_signature_path():
        return _global_config_dir() / "mail_signature.txt"

    def default_global_signature_html_path():
        return _global_config_dir() / "mail_signature.html"

    def default_global_scan_state_path():
        return _global_config_dir() / "gmail_scan_state.json"

    def default_global_send_ledger_path():
        return _global_config_dir() / "gmail_send_ledger.json"

    def resolve_addressbook_path(*, mail=None, skill_data_dir=None, bundled_addressbook=None):
        """GMAIL_ADDRESSBOOK_PATH, else the configured path, else the bundled
        address book, else <skill_data_dir or cwd>/addressbook.yaml if it
        exists, else the global default."""
        if _env("ENV_ADDRESSBOOK_PATH"):
            return _expand(_env("ENV_ADDRESSBOOK_PATH"))
        settings = mail if mail is not None else load_merged_mail_settings()
        if settings.addressbook_path:
            return _expand(settings.addressbook_path)
        if bundled_addressbook and Path(bundled_addressbook).is_file():
            return Path(bundled_addressbook).resolve()
        local = Path(skill_data_dir or Path.cwd()) / "addressbook.yaml"
        if local.is_file():
            return local.resolve()
        return default_global_addressbook_path()

    def _state_path(env_name, configured, skill_data_dir, filename, default):
        if _env(env_name):
            return _expand(_env(env_name))
        if configured:
            return _expand(configured)
        local = Path(skill_data_dir or Path.cwd()) / filename
        if local.parent.exists():
            return local.resolve()
        return default()

    def resolve_scan_state_path(*, mail=None, skill_data_dir=None):
        settings = mail if mail is not None else load_merged_mail_settings()
        return _state_path("ENV_SCAN_STATE_PATH", settings.scan_state_path, skill_data_dir,
                           ".gmail_scan_state.json", default_global_scan_state_path)

    def resolve_send_ledger_path(*, mail=None, skill_data_dir=None):
        settings = mail if mail is not None else load_merged_mail_settings()
        return _state_path("ENV_SEND_LEDGER_PATH", settings.send_ledger_path, skill_data_dir,
                           "send_ledger.json", default_global_send_ledger_path)

    def _read_text(path):
        return path.read_text(encoding="utf-8").strip() if path.is_file() else ""

    def _local(config, key):
        return ((config or {}).get(key) or "").strip()

    def resolve_signature_plain(*, mail=None, skill_local_config=None):
        """(signature, source): source is env_path, env_plain, config_path,
        config_plain, skill_local or none, checked in that order."""
        if _env("ENV_SIGNATURE_PATH"):
            return _read_text(_expand(_env("ENV_SIGNATURE_PATH"))), "env_path"
        if _env("ENV_SIGNATURE_PLAIN"):
            return _env("ENV_SIGNATURE_PLAIN"), "env_plain"
        settings = mail if mail is not None else load_merged_mail_settings()
        if settings.signature_path:
            text = _read_text(_expand(settings.signature_path))
            if text:
                return text, "config_path"
        if settings.signature_plain:
            return settings.signature_plain.strip(), "config_plain"
        if _local(skill_local_config, "default_signature_plain"):
            return _local(skill_local_config, "default_signature_plain"), "skill_local"
        return "", "none"

    def resolve_signature_html(*, mail=None, skill_local_config=None):
        """(html, source): source is env_html_path, config_html_path,
        skill_local_html or none."""
        if _env("ENV_SIGNATURE_HTML_PATH"):
            return _read_text(_expand(_env("ENV_SIGNATURE_HTML_PATH"))), "env_html_path"
        settings = mail if mail is not None else load_merged_mail_settings()
        if settings.signature_html_path:
            text = _read_text(_expand(settings.signature_html_path))
            if text:
                return text, "config_html_path"
        if _local(skill_local_config, "default_signature_html"):
            return _local(skill_local_config, "default_signature_html"), "skill_local_html"
        return "", "none"

    def load_addressbook_yaml(path):
        path = Path(path)
        if not path.is_file():
            return {"contacts": {}, "org_domains": {}}
        return _read_yaml(path)

    def count_addressbook_contacts(data):
        contacts = data.get("contacts")
        return sum(1 for v in contacts.values() if isinstance(v, dict)) if isinstance(contacts, dict) else 0

    def validate_addressbook_data(data):
        """A list of problems (empty when the address book is valid)."""
        errors = []
        contacts = data.get("contacts")
        contacts = {} if contacts is None else contacts
        org_domains = data.get("org_domains")
        org_domains = {} if org_domains is None else org_domains
        if not isinstance(contacts, dict):
            errors.append("contacts must be a mapping")
            contacts = {}
        if not isinstance(org_domains, dict):
            errors.append("org_domains must be a mapping")
        seen = set()
        for cid, contact in contacts.items():
            if not isinstance(contact, dict):
                errors.append("contacts.%s must be a mapping" % cid)
                continue
            emails = contact.get("emails")
            if not isinstance(emails, list) or not emails:
                errors.append("contacts.%s requires at least one email" % cid)
                continue
            valid = False
            for entry in emails:
                if not isinstance(entry, str) or not email_re.match(entry.strip()):
                    errors.append("contacts.%s has invalid email %r" % (cid, entry))
                    continue
                key = entry.strip().casefold()
                if key in seen:
                    errors.append("duplicate email across contacts: %s" % entry)
                seen.add(key)
                valid = True
            if not valid:
                errors.append("contacts.%s has no valid emails" % cid)
        return errors

    def validate_signature_text(text):
        stripped = (text or "").strip()
        if not stripped:
            return ["signature is empty"]
        errors = []
        if len(stripped) > 4000:
            errors.append("signature exceeds max length (%d > 4000)" % len(stripped))
        if secret_re.search(stripped):
            errors.append("signature looks like it contains secret material")
        return errors

    def slugify_contact_id(display_name):
        return re.sub(r"[^a-z0-9]+", "_", (display_name or "").casefold()).strip("_") or "contact"

    public = dict(env_names)
    public.update({
        "SKILLWARE_SITE_URL": "https://skillware.site",
        "SKILLWARE_GITHUB_URL": "https://github.com/ARPAHLS/skillware",
        "ARPACORP_URL": "https://arpacorp.net",
        "DEFAULT_ADDRESSBOOK_REL": "addressbook.yaml",
        "DEFAULT_SIGNATURE_FILENAME": "mail_signature.txt",
        "DEFAULT_SIGNATURE_HTML_FILENAME": "mail_signature.html",
    })
    for obj in (MailSettings, parse_mail_block, merge_mail_settings, load_merged_mail_settings,
                default_global_addressbook_path, default_global_signature_path,
                default_global_signature_html_path, default_global_scan_state_path,
                default_global_send_ledger_path, resolve_addressbook_path, resolve_scan_state_path,
                resolve_send_ledger_path, resolve_signature_plain, resolve_signature_html,
                load_addressbook_yaml, count_addressbook_contacts, validate_addressbook_data,
                validate_signature_text, slugify_contact_id):
        obj.__module__ = mod.__name__
        public[obj.__name__] = obj
    mod.__dict__.update(public)


def _sdk_context(mod):
    """skillware.context: SkillContext, the host's registry of skills."""

    class SkillContext(object):
        """Skillware's host-side registry context (discovery, tool export,
        execute() with credentials from a secret provider). Inside skillbox
        the host is skillbox: it resolves the manifest's env_vars from the
        operator's grants on every call and passes them as config, as
        SkillContext(secret_provider=...) does; there is no registry to
        discover in a sandbox."""

        def __init__(self, *args, **kwargs):
            raise RuntimeError(
                "SkillContext is a host API; inside skillbox the host is skillbox, "
                "which passes each call's granted credentials as config")

    SkillContext.__module__ = mod.__name__
    mod.SkillContext = SkillContext


def _sdk_root(mod):
    def __getattr__(name):  # skillware.SkillContext, imported on first use
        if name == "SkillContext":
            import importlib

            return importlib.import_module("skillware.context").SkillContext
        raise AttributeError("module 'skillware' has no attribute %r" % name)

    mod.__getattr__ = __getattr__
    mod.__all__ = ["SkillContext"]


def _sdk_core(mod):
    pass


# name -> (builder, is a package)
_SDK_MODULES = {
    "skillware": (_sdk_root, True),
    "skillware.context": (_sdk_context, False),
    "skillware.core": (_sdk_core, True),
    "skillware.core.base_skill": (_sdk_base_skill, False),
    "skillware.core.env": (_sdk_env, False),
    "skillware.core.mail_config": (_sdk_mail_config, False),
    "skillware.core.secrets": (_sdk_secrets, False),
}


class _SdkFinder(object):
    """Provides the stand-in modules; last on sys.meta_path, and for a
    submodule only when `skillware` itself is the stand-in."""

    def find_spec(self, name, path=None, target=None):
        entry = _SDK_MODULES.get(name)
        if entry is None:
            return None
        if name != "skillware" and not getattr(sys.modules.get("skillware"), _SDK_MARK, False):
            return None
        import importlib.util

        return importlib.util.spec_from_loader(name, self, is_package=entry[1])

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        setattr(module, _SDK_MARK, True)
        _SDK_MODULES[module.__name__][0](module)


_sdk_finder = _SdkFinder()


def _sdk_real_spec():
    """The spec of a real `skillware` another finder sees, or None."""
    for finder in list(sys.meta_path):
        find = getattr(finder, "find_spec", None)
        if finder is _sdk_finder or find is None:
            continue
        try:
            spec = find("skillware", None)
        except Exception:
            spec = None
        if spec is not None:
            return spec
    return None


def _sdk_install(manifest):
    """Choose the SDK for the skill's imports. Call it again once site is
    processed: a real `skillware` found then evicts a stand-in imported
    before. With the stand-in, its BaseSkill is imported now (a zygote
    shares it with every call). Returns whether the stand-in is used."""
    import importlib

    _sdk_state["manifest"] = manifest
    if _sdk_finder not in sys.meta_path:
        sys.meta_path.append(_sdk_finder)
    if _sdk_real_spec() is not None:
        for name, m in list(sys.modules.items()):
            if (name == "skillware" or name.startswith("skillware.")) and getattr(m, _SDK_MARK, False):
                del sys.modules[name]
        return False
    importlib.import_module("skillware.core.base_skill")
    importlib.import_module("skillware.core.env")
    return True
