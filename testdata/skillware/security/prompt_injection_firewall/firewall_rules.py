"""Rule loading and matching for the prompt injection firewall fixture."""

import os
import re

import yaml


def load_rules(kb_dir):
    """Loads every *.yaml file in kb_dir, in name order."""
    rules = []
    for name in sorted(os.listdir(kb_dir)):
        if not name.endswith(".yaml"):
            continue
        with open(os.path.join(kb_dir, name), encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
        for rule in doc.get("rules", []):
            rules.append(
                {
                    "id": rule["id"],
                    "category": doc.get("category", os.path.splitext(name)[0]),
                    "weight": float(rule.get("weight", 0.5)),
                    "pattern": re.compile(rule["pattern"], re.IGNORECASE),
                }
            )
    return rules


def match(rules, text):
    return [
        {"rule": r["id"], "category": r["category"], "weight": r["weight"]}
        for r in rules
        if r["pattern"].search(text)
    ]


def score(matches):
    """Combines weights as independent evidence: 1 - prod(1 - w)."""
    remaining = 1.0
    for m in matches:
        remaining *= 1.0 - m["weight"]
    return round(1.0 - remaining, 3)
