"""The training data: every phrasing of every entry in every language, and off-topic messages.

Off-topic messages (bot/nlu/data/offtopic-<lang>.txt: weather, sport, recipes...) are the
examples of "none": they teach the model what it should not answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..knowledge import KnowledgeBase
from ..languages import LANGUAGES
from .features import model_text

NONE = "__none__"       # the label of off-topic messages
DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Sample:
    text: str           # as the models see it (model_text)
    label: str          # entry id, or NONE
    lang: str


@lru_cache(maxsize=None)
def offtopic_texts(lang: str) -> tuple[str, ...]:
    path = DATA_DIR / f"offtopic-{lang}.txt"
    if not path.is_file():
        return ()
    return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                 if line.strip() and not line.startswith("#"))


def training_samples(kb: KnowledgeBase, offtopic: bool = True) -> list[Sample]:
    """One sample per distinct (text, label): questions, examples, title and keywords."""
    out: list[Sample] = []
    seen: set[tuple[str, str]] = set()

    def add(text: str, label: str, lang: str):
        t = model_text(text, lang, known=True)
        if t and (t, label) not in seen:
            seen.add((t, label))
            out.append(Sample(t, label, lang))

    for entry_id in sorted(kb.entries):
        for lang, tr in kb.entries[entry_id].translations.items():
            for text in (*tr.phrasings, tr.title, *tr.keywords):
                add(text, entry_id, lang)
    if offtopic:
        for lang in LANGUAGES:
            for text in offtopic_texts(lang):
                add(text, NONE, lang)
    return out


def fingerprint(samples: list[Sample], version: str) -> str:
    """A digest of the training data and the model's version: the cache key."""
    h = hashlib.sha256(version.encode())
    for s in samples:
        h.update(f"{s.label}\x1f{s.lang}\x1f{s.text}\x1e".encode())
    return h.hexdigest()
