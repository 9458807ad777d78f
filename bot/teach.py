"""Staff teach the matcher: a question people asked is added to an entry's `examples:` list.

The entry's YAML file is edited as text (its comments, order and layout are kept), the result is
checked with the same loader the bot uses, and the old file is put back if the check fails. The
running bot then retrains: its file watcher sees the change, and /report's teach buttons reload
at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .knowledge import KnowledgeBase, load_knowledge
from .languages import LANGUAGES
from .text import normalize_known

MAX_EXAMPLE_CHARS = 600


@dataclass
class TeachResult:
    ok: bool
    message: str            # for staff, in English (the command line and the bot's staff replies)
    file: Path | None = None


def _quoted(text: str) -> str:
    """The text as one YAML list item, safely quoted."""
    return yaml.safe_dump([text], allow_unicode=True, width=100_000, default_style='"').strip()


def add_example(lines: list[str], lang: str, text: str) -> list[str] | None:
    """Lines of an entry file with `text` appended to `lang:`'s examples (created if missing)."""
    start = next((i for i, line in enumerate(lines) if re.match(rf"^{lang}:\s*(#.*)?$", line)), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^\S", lines[i])), len(lines))
    block = range(start + 1, end)
    indent = next((re.match(r"^(\s+)", lines[i]).group(1) for i in block if lines[i].strip()), "  ")
    item = f"{indent}  {_quoted(text)}"

    def list_end(key_line: int) -> int:
        """The line after the last item of the list that starts below `key_line`."""
        last = key_line
        for i in range(key_line + 1, end):
            stripped = lines[i].strip()
            if not stripped or stripped.startswith("#"):
                continue
            if lines[i].startswith(indent + "  ") or lines[i].startswith(indent + "-"):
                last = i
            else:
                break
        return last + 1

    examples = next((i for i in block if re.match(rf"^{indent}examples:\s*(#.*)?$", lines[i])), None)
    if examples is not None:
        at = list_end(examples)
        return lines[:at] + [item] + lines[at:]
    if any(re.match(rf"^{indent}examples:", lines[i]) for i in block):
        return None   # examples: written inline ([...]): too risky to edit as text
    questions = next((i for i in block if re.match(rf"^{indent}questions:\s*(#.*)?$", lines[i])), None)
    at = list_end(questions) if questions is not None else end
    return lines[:at] + [f"{indent}examples:", item] + lines[at:]


def teach(knowledge_dir: Path, entry_id: str, text: str, lang: str, kb: KnowledgeBase | None = None) -> TeachResult:
    text = " ".join(text.split())
    if not normalize_known(text):
        return TeachResult(False, "The question has no words.")
    if len(text) > MAX_EXAMPLE_CHARS:
        return TeachResult(False, f"The question is {len(text)} characters; at most {MAX_EXAMPLE_CHARS}.")
    if lang not in LANGUAGES:
        return TeachResult(False, f"Unknown language {lang!r}; use one of {', '.join(LANGUAGES)}.")
    if kb is None:
        kb, _issues = load_knowledge(knowledge_dir)
    entry = kb.entries.get(entry_id)
    if entry is None:
        return TeachResult(False, f"There is no entry {entry_id!r}. The ids are the file names in "
                                  "knowledge/ (python main.py kb dump lists them).")
    norm = normalize_known(text)
    for other in kb.entries.values():
        for lg, tr in other.translations.items():
            if norm in {normalize_known(p) for p in (*tr.phrasings, tr.title)}:
                if other.id == entry_id:
                    return TeachResult(True, f"{entry_id} [{lg}] already has this question; nothing changed.",
                                       knowledge_dir.parent / entry.file)
                return TeachResult(False, f"Entry {other.id} [{lg}] already has this question: it can "
                                          "belong to one entry only. Remove it there first.")
    path = knowledge_dir.parent / entry.file
    if not path.is_file():
        path = next(knowledge_dir.rglob(f"{entry_id}.yaml"), path)
    original = path.read_text(encoding="utf-8")
    edited = add_example(original.splitlines(), lang, text)
    if edited is None:
        return TeachResult(False, f"Could not find where to add it in {path.name}: add it by hand under "
                                  f"{lang}: examples:.")
    path.write_text("\n".join(edited) + "\n", encoding="utf-8")
    new_kb, issues = load_knowledge(knowledge_dir)
    errors = [i for i in issues if i.level == "error"]
    taught = new_kb.entries.get(entry_id)
    if errors or taught is None or text not in taught.text(lang).examples:
        path.write_text(original, encoding="utf-8")
        detail = "; ".join(str(i) for i in errors[:3]) or "the question did not load"
        return TeachResult(False, f"Not added, the file is unchanged: {detail}")
    return TeachResult(True, f"Added to {entry_id} [{lang}] in {path.relative_to(knowledge_dir.parent)}.", path)
