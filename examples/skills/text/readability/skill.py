"""readability: Flesch reading ease and the share of common words."""

import os
import re

from skillware.core.base_skill import BaseSkill

from . import syllables

WORD = re.compile(r"[A-Za-z']+")
SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load_common_words():
    path = os.path.join(_HERE, "data", "common_words.txt")
    with open(path, encoding="utf-8") as f:
        return {
            line.strip().lower()
            for line in f
            if line.strip() and not line.startswith("#")
        }


COMMON_WORDS = _load_common_words()

GRADES = [
    (90, "very easy"),
    (80, "easy"),
    (70, "fairly easy"),
    (60, "standard"),
    (50, "fairly difficult"),
    (30, "difficult"),
]


def grade(score):
    for floor, label in GRADES:
        if score >= floor:
            return label
    return "very difficult"


class ReadabilitySkill(BaseSkill):
    @property
    def manifest(self):
        return {
            "name": "readability",
            "version": "1.0.0",
            "description": "Flesch reading ease and common-word share of a text.",
        }

    def execute(self, params):
        text = params.get("text", "")
        words = [w.strip("'") for w in WORD.findall(text)]
        words = [w for w in words if w]
        if not words:
            return {
                "words": 0,
                "sentences": 0,
                "syllables": 0,
                "flesch_reading_ease": 0.0,
                "grade": "n/a",
                "common_word_share": 0.0,
            }
        sentences = max(len(SENTENCE_END.findall(text.strip())), 1)
        syl = sum(syllables.count(w) for w in words)
        score = 206.835 - 1.015 * (len(words) / sentences) - 84.6 * (syl / len(words))
        common = sum(1 for w in words if w.lower() in COMMON_WORDS)
        return {
            "words": len(words),
            "sentences": sentences,
            "syllables": syl,
            "flesch_reading_ease": round(score, 1),
            "grade": grade(score),
            "common_word_share": round(common / len(words), 3),
        }
