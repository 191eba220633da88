"""word_stats: counts words, sentences and frequent words of a text."""

import re
from collections import Counter

from skillware.core.base_skill import BaseSkill

WORD = re.compile(r"[A-Za-z0-9']+")
SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


class WordStatsSkill(BaseSkill):
    @property
    def manifest(self):
        return {
            "name": "word_stats",
            "version": "1.0.0",
            "description": "Counts words, sentences and top words of a text.",
        }

    def execute(self, params):
        text = params.get("text", "")
        top = int(params.get("top", 5))
        words = [w.lower().strip("'") for w in WORD.findall(text)]
        words = [w for w in words if w]
        sentences = len(SENTENCE_END.findall(text.strip()))
        if text.strip() and sentences == 0:
            sentences = 1  # a text without a final full stop is still a sentence
        counts = Counter(words)
        # Most frequent first, ties in alphabetical order: deterministic.
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        avg = round(sum(len(w) for w in words) / len(words), 2) if words else 0.0
        return {
            "words": len(words),
            "sentences": sentences,
            "characters": len(text),
            "average_word_length": avg,
            "top_words": [{"word": w, "count": c} for w, c in ranked],
        }
