"""A small heuristic English syllable counter (no dictionary)."""

import re

VOWEL_GROUPS = re.compile(r"[aeiouy]+")


def count(word):
    """Estimates the syllables in one word; every word has at least one."""
    w = re.sub(r"[^a-z]", "", word.lower())
    if not w:
        return 0
    n = len(VOWEL_GROUPS.findall(w))
    # A final silent "e" ("make"), but not "-le" after a consonant ("table").
    if w.endswith("e") and not w.endswith(("le", "ee", "ye")) and n > 1:
        n -= 1
    # "-ed" is usually silent unless after t or d ("wanted").
    if w.endswith("ed") and len(w) > 3 and w[-3] not in "td" and n > 1:
        n -= 1
    return max(n, 1)
