"""Per-model token budgets, read from data/budgets.json next to this file."""

import json
import os

_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "budgets.json")


def load():
    with open(_PATH, encoding="utf-8") as f:
        return json.load(f)


def for_model(budgets, model):
    """Returns (family, budget): the longest family prefix of model, or the default."""
    best = None
    for family in budgets["models"]:
        if model.lower().startswith(family) and (best is None or len(family) > len(best)):
            best = family
    if best is None:
        return "default", budgets["default"]
    return best, budgets["models"][best]
