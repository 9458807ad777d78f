"""Small, valid knowledge-base files for tests, to be broken one way at a time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

QUESTIONS = {
    "en": ["what is {t}", "tell me about {t}", "{t} help", "i need {t}", "{t} info please",
           "explain {t}", "{t}?", "how does {t} work"],
    "pt": ["o que e {t}", "me fala sobre {t}", "ajuda {t}", "preciso de {t}", "info {t} por favor",
           "explica {t}", "{t} ajuda?", "como funciona {t}"],
    "es": ["que es {t}", "hableme de {t}", "ayuda {t}", "necesito {t}", "info {t} por favor",
           "explique {t}", "{t} ayuda?", "como funciona {t}"],
    "ht": ["kisa {t} ye", "pale m de {t}", "ed {t}", "mwen bezwen {t}", "enfomasyon {t} souple",
           "eksplike {t}", "{t} ed?", "kijan {t} mache"],
}


def entry_data(entry_id: str, topic: str, category: str = "rights") -> dict:
    data = {"id": entry_id, "category": category, "sources": ["https://example.org/source"],
            "reviewed": dt.date(2026, 11, 25)}
    for lang, qs in QUESTIONS.items():
        data[lang] = {"title": f"{topic} ({lang})",
                      "questions": [q.format(t=topic) for q in qs],
                      "keywords": [topic],
                      "answer": f"<b>About {topic}.</b>\n• Line in {lang}."}
    return data


def write_entry(root: Path, data: dict, name: str | None = None) -> Path:
    path = root / data.get("category", "rights") / f"{name or data['id']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
