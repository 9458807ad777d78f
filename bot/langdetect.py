"""Which of en, pt, es, ht a short message is written in.

General-purpose detectors do poorly on three-word phone messages and know no Kreyòl, so this one
is built for the job: marker words per language, the vocabulary of the knowledge base itself
(each word counts for the languages it appears in, less when it is shared), chat abbreviations,
and letters only one language uses (ã, ç, ñ, ò).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from .languages import LANGUAGES
from .lexicon import GREETINGS, MARKERS, STOP_WORDS, THANKS
from .text import ABBREVIATIONS, fold, normalize, normalize_known

_LETTER_HINTS = {
    "pt": re.compile(r"[ãõçâêô]|ção|ções"),
    "es": re.compile(r"[ñ¿¡]|ción|ciones"),
    "ht": re.compile(r"[òè]"),
}


@dataclass(frozen=True)
class Detection:
    language: str | None  # None when the text gives no clear signal
    scores: dict[str, float]


class LanguageDetector:
    def __init__(self, texts_by_language: dict[str, list[str]] | None = None):
        self._weights: dict[str, dict[str, float]] = {lang: {} for lang in LANGUAGES}
        counts: dict[str, Counter] = {lang: Counter() for lang in LANGUAGES}
        for lang, texts in (texts_by_language or {}).items():
            for text in texts:
                counts[lang].update(set(normalize_known(text).split()))
        for lang in LANGUAGES:
            words = set(counts[lang])
            words |= MARKERS[lang] | STOP_WORDS[lang]
            words |= set(ABBREVIATIONS[lang])
            for phrase in GREETINGS[lang] | THANKS[lang]:
                words |= set(phrase.split())
            for word in words:
                self._weights[lang][word] = 1.0 + math.log1p(counts[lang][word])
                if word in MARKERS[lang]:
                    self._weights[lang][word] += 2.0
        # A word known in several languages tells less about each of them.
        for word in {w for table in self._weights.values() for w in table}:
            holders = [lang for lang in LANGUAGES if word in self._weights[lang]]
            if len(holders) > 1:
                for lang in holders:
                    self._weights[lang][word] /= len(holders) ** 1.5

    def detect(self, text: str) -> Detection:
        scores = {lang: 0.0 for lang in LANGUAGES}
        lowered = text.lower()
        for lang, pattern in _LETTER_HINTS.items():
            scores[lang] += 2.0 * len(pattern.findall(lowered))
        words = normalize(fold(text)).split()
        for word in words:
            for lang in LANGUAGES:
                scores[lang] += self._weights[lang].get(word, 0.0)
        ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
        (best, top), (_, second) = ranked[0], ranked[1]
        if top < 1.0 or top - second < 0.5:
            return Detection(None, scores)
        return Detection(best, scores)
