"""Translation freshness: when one language's answer changes, the others need review.

`knowledge/review-state.json` records, per entry and language, the fingerprint of that
language's answer when it was last reviewed, and the fingerprints of the other languages'
answers at that moment. A language is *stale* when another language changed after it was
reviewed and it has not changed since; *edited* when its own answer changed since its review.
`python main.py kb reviewed ENTRY [LANG ...]` records a review (the tool writes the file).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .knowledge import Entry, KnowledgeBase
from .languages import LANGUAGES

STATE_FILE = "review-state.json"


def fingerprint(answer: str) -> str:
    return hashlib.sha256(" ".join(answer.split()).encode("utf-8")).hexdigest()[:10]


@dataclass(frozen=True)
class LanguageStatus:
    state: str                 # "ok", "missing", "stale", "edited", "new"
    changed: tuple[str, ...] = ()  # for "stale": the languages that changed


def load_state(directory: Path) -> dict:
    path = directory / STATE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def save_state(directory: Path, state: dict) -> None:
    path = directory / STATE_FILE
    path.write_text(json.dumps(state, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def entry_status(entry: Entry, state: dict) -> dict[str, LanguageStatus]:
    recorded = state.get(entry.id, {})
    current = {lang: fingerprint(tr.answer) for lang, tr in entry.translations.items()}
    out = {}
    for lang in LANGUAGES:
        if lang not in current:
            out[lang] = LanguageStatus("missing")
        elif lang not in recorded:
            out[lang] = LanguageStatus("new")
        elif recorded[lang]["fp"] != current[lang]:
            out[lang] = LanguageStatus("edited")
        else:
            changed = tuple(other for other, fp in sorted(recorded[lang]["against"].items())
                            if other in current and current[other] != fp)
            out[lang] = LanguageStatus("stale", changed) if changed else LanguageStatus("ok")
    return out


def mark_reviewed(kb: KnowledgeBase, directory: Path, entry_id: str, langs: list[str] | None = None) -> list[str]:
    """Record that these languages of the entry (default: all) are reviewed as they are now."""
    entry = kb.entries[entry_id]
    current = {lang: fingerprint(tr.answer) for lang, tr in entry.translations.items()}
    state = load_state(directory)
    done = []
    for lang in langs or list(current):
        if lang not in current:
            continue
        state.setdefault(entry_id, {})[lang] = {
            "fp": current[lang], "against": {o: fp for o, fp in current.items() if o != lang}}
        done.append(lang)
    save_state(directory, state)
    return done


MARKS = {"ok": "ok", "missing": "MISSING", "stale": "STALE", "edited": "edited", "new": "new"}


def status_table(kb: KnowledgeBase, directory: Path, today) -> tuple[list[str], dict[str, dict[str, int]]]:
    """Lines of the `kb status` table and totals per language and mark."""
    state = load_state(directory)
    totals = {lang: {m: 0 for m in (*MARKS, "overdue")} for lang in LANGUAGES}
    width = max((len(e) for e in kb.entries), default=5)
    lines = [f"{'entry':<{width}}  " + "  ".join(f"{lang:<10}" for lang in LANGUAGES) + "  review"]
    for entry_id in sorted(kb.entries):
        entry = kb.entries[entry_id]
        statuses = entry_status(entry, state)
        overdue = bool(entry.review_by and entry.review_by < today)
        cells = []
        for lang in LANGUAGES:
            st = statuses[lang]
            totals[lang][st.state] += 1
            totals[lang]["overdue"] += overdue
            mark = MARKS[st.state] + (f"({','.join(st.changed)})" if st.changed else "")
            cells.append(f"{mark:<10}")
        review = f"OVERDUE since {entry.review_by}" if overdue else (f"by {entry.review_by}" if entry.review_by else "")
        lines.append(f"{entry_id:<{width}}  " + "  ".join(cells) + f"  {review}")
    return lines, totals
