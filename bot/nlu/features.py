"""Text as the models see it: normalised (accents, case, repeats, punctuation) with chat
abbreviations expanded for the language the text is written in."""

from __future__ import annotations

from ..text import expand_abbreviations, normalize, normalize_known


def model_text(text: str, lang: str | None, known: bool = False) -> str:
    """`known` texts (the knowledge base's own) use the cached normaliser."""
    words = (normalize_known(text) if known else normalize(text)).split()
    if lang:
        words = expand_abbreviations(words, lang)
    return " ".join(words)
