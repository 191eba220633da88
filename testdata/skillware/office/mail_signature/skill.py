"""Fixture: mail settings through skillware.core.mail_config, the way
office/gmail_handler reads them (operator settings loaded in __init__,
paths and signature resolved with the skill's data folder as fallback)."""

import json
from pathlib import Path

from skillware.core.base_skill import BaseSkill
from skillware.core.mail_config import (
    MailSettings,
    load_merged_mail_settings,
    resolve_addressbook_path,
    resolve_signature_plain,
    slugify_contact_id,
    validate_addressbook_data,
    validate_signature_text,
)

_DATA = Path(__file__).resolve().parent / "data"


class MailSignatureSkill(BaseSkill):
    def __init__(self, config=None):
        super().__init__(config)
        with open(_DATA / "skill_config.json", encoding="utf-8") as f:
            self.skill_config = json.load(f)
        # The operator's merged mail: settings (none in a sandbox).
        self.operator_mail = load_merged_mail_settings()
        # Resolved against the bundled address book only, so the result does
        # not depend on the machine's Skillware config files.
        self.addressbook_path = resolve_addressbook_path(
            mail=MailSettings(),
            skill_data_dir=_DATA,
            bundled_addressbook=_DATA / "addressbook.json",
        )

    @property
    def manifest(self):
        return {"name": "mail_signature", "version": "0.1.0"}

    def execute(self, params):
        with open(self.addressbook_path, encoding="utf-8") as f:
            book = json.load(f)
        contact_id = to = None
        if params.get("recipient"):
            contact_id = slugify_contact_id(params["recipient"])
            entry = book.get("contacts", {}).get(contact_id)
            if entry:
                to = entry["emails"][0]
        signature, source = resolve_signature_plain(
            mail=MailSettings(), skill_local_config=self.skill_config
        )
        problems = validate_signature_text(signature)
        text = params["body"].rstrip()
        if signature and not problems:
            text += "\n\n" + signature
        return {
            "text": text,
            "to": to,
            "contact_id": contact_id,
            "signature_source": source,
            "signature_problems": problems,
            "addressbook": self.addressbook_path.name,
            "addressbook_errors": validate_addressbook_data(book),
            "operator_settings": bool(self.operator_mail.to_document_block()),
        }
