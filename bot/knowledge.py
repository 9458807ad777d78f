"""The knowledge base: YAML entries under `knowledge/`, loaded and checked.

Staff edit these files by hand, so every problem is reported as an `Issue` naming the file, the
line, the entry and the language, with what to do about it. Loading never raises on bad content:
it returns the issues, and the caller decides (the running bot keeps its last good knowledge base).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .languages import LANGUAGES
from .telegram_html import check_html, visible_length
from .nlu.segments import is_situation, sentence_count
from .text import normalize_known

CATEGORIES = ("rights", "help", "campaign", "action", "about")
ENTRY_FIELDS = {"id", "category", "sources", "reviewed", "review_by", "related", "notes", *LANGUAGES}
REQUIRED_ENTRY_FIELDS = ("id", "category", "sources", "reviewed")
LANGUAGE_FIELDS = {"title", "questions", "examples", "keywords", "answer", "translated_from"}
REQUIRED_LANGUAGE_FIELDS = ("title", "questions", "answer")
MIN_QUESTIONS = 3           # fewer is an error: the entry cannot be found
RECOMMENDED_QUESTIONS = 8   # fewer is a warning
# Training floor for the matcher (questions + examples, per language): below it, a warning.
MIN_PHRASINGS = 40
MIN_SITUATIONS = 20         # of which phrasings that describe a situation (see is_situation)
MIN_LONG = 5                # of which messages of two sentences or more
MAX_TITLE = 40
MAX_ANSWER = 3500           # leaves room for the footer within Telegram's 4,096
LONG_ANSWER = 1500          # longer is a warning: people read this on a phone
ID_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Issue:
    """One problem found in the knowledge base."""

    level: str  # "error" or "warning"
    file: str
    line: int | None
    message: str
    entry: str | None = None
    lang: str | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        what = " ".join(x for x in (f"entry {self.entry}" if self.entry else "",
                                     f"[{self.lang}]" if self.lang else "") if x)
        return f"{self.level.upper()} {where}" + (f" ({what})" if what else "") + f": {self.message}"


@dataclass(frozen=True)
class Translation:
    """One language of an entry."""

    title: str
    questions: tuple[str, ...]
    keywords: tuple[str, ...]
    answer: str
    translated_from: str | None = None
    examples: tuple[str, ...] = ()   # more ways people write it (situations, long messages)

    @property
    def phrasings(self) -> tuple[str, ...]:
        """Everything the matcher learns this language of the entry from."""
        return (*self.questions, *self.examples)


@dataclass(frozen=True)
class Entry:
    id: str
    category: str
    sources: tuple[str, ...]
    reviewed: dt.date | None
    review_by: dt.date | None
    related: tuple[str, ...]
    translations: dict[str, Translation]
    file: str
    line: int
    notes: str = ""

    def text(self, lang: str) -> Translation:
        return self.translations[lang]


@dataclass
class KnowledgeBase:
    entries: dict[str, Entry] = field(default_factory=dict)

    def in_category(self, category: str) -> list[Entry]:
        return [e for e in self.entries.values() if e.category == category]

    def __len__(self) -> int:
        return len(self.entries)


# libyaml's parser when PyYAML has it (much faster on a large knowledge base), else pure Python.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_BaseLoader):
    """A safe YAML loader that remembers the line of every mapping key."""


def _construct_mapping(loader, node, deep=False):
    mapping = _LineDict(yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep=True))
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        mapping.lines[key] = value_node.start_mark.line + 1
    keys = [loader.construct_object(k) for k, _ in node.value]
    dupes = {k for k in keys if keys.count(k) > 1}
    mapping.duplicate_keys = sorted(map(str, dupes))
    return mapping


class _LineDict(dict):
    line: int = 0

    def __init__(self, *args):
        super().__init__(*args)
        self.lines: dict = {}
        self.duplicate_keys: list[str] = []


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _NotADate(str):
    """Text that looks like a date but is not one (2027-02-30): kept as text, so that the field
    that holds it reports the file and line instead of the YAML parser raising."""


def _construct_timestamp(loader, node):
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError:
        return _NotADate(loader.construct_scalar(node))


_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def load_knowledge(directory: Path, today: dt.date | None = None) -> tuple[KnowledgeBase, list[Issue]]:
    """Load every `*.yaml` under `directory`. Returns the entries that loaded and all issues."""
    today = today or dt.date.today()
    kb = KnowledgeBase()
    issues: list[Issue] = []
    files = sorted(p for p in directory.rglob("*.yaml") if not p.name.startswith("."))
    seen: dict[str, Path] = {}   # entry id -> the file it was loaded from
    if not files:
        issues.append(Issue("error", str(directory), None, "no knowledge files (*.yaml) found"))
    for path in files:
        rel = _display_path(path, directory)
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
        except UnicodeDecodeError:
            issues.append(Issue("error", rel, None, "the file is not UTF-8 text: save it as UTF-8"))
            continue
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            context_mark = getattr(exc, "context_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            if context_mark and mark and context_mark.line != mark.line:
                # e.g. an unclosed quote: the problem shows at the end, the cause is where it began
                problem = f"{exc.context} here, and then {problem} (line {mark.line + 1})"
                mark = context_mark
            issues.append(Issue("error", rel, mark.line + 1 if mark else None,
                                f"YAML syntax error: {problem}. Check indentation and quotes on this "
                                "line and the one before it"))
            continue
        except (ValueError, TypeError, RecursionError) as exc:   # a value YAML cannot build
            issues.append(Issue("error", rel, None, f"the file could not be read ({type(exc).__name__}: "
                                f"{exc}); check its values, or run python main.py kb check"))
            continue
        entry, entry_issues = _parse_entry(data, rel, path.stem, today)
        issues.extend(entry_issues)
        if entry is None:
            continue
        if entry.id in kb.entries:
            other = kb.entries[entry.id]
            if _mtime(path) < _mtime(seen[entry.id]):   # the file read first is the newer: the copy
                kb.entries[entry.id], seen[entry.id] = entry, path
                entry, other = other, entry
            issues.append(Issue("error", entry.file, entry.line, f"duplicate id: {other.file} already "
                                "has this id; give one of them a new id", entry.id))
            continue
        seen[entry.id] = path
        if any(i.level == "error" for i in entry_issues):
            continue
        kb.entries[entry.id] = entry
    issues.extend(_cross_checks(kb))
    return kb, issues


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _display_path(path: Path, directory: Path) -> str:
    try:
        return str(path.relative_to(directory.parent))
    except ValueError:
        return str(path)


def _parse_entry(data, rel: str, stem: str, today: dt.date) -> tuple[Entry | None, list[Issue]]:
    issues: list[Issue] = []
    if not isinstance(data, dict):
        return None, [Issue("error", rel, 1, "the file must describe one entry (id:, category:, "
                            "en:, pt:, es:, ht: ...)")]
    entry_id = data.get("id")
    line_of = data.lines.get

    def add(level, message, key=None, lang=None, line=None):
        issues.append(Issue(level, rel, line or (line_of(key) if key else data.line),
                            message, str(entry_id) if entry_id else None, lang))

    for key in data.duplicate_keys:
        add("error", f"the field '{key}' appears twice; keep one")
    for key in data:
        if key not in ENTRY_FIELDS:
            add("error", f"unknown field '{key}'. Allowed: {', '.join(sorted(ENTRY_FIELDS))}", key)
    for key in REQUIRED_ENTRY_FIELDS:
        if data.get(key) in (None, "", []):
            add("error", f"missing field '{key}'")
    if entry_id is not None and (not isinstance(entry_id, str) or not ID_PATTERN.match(entry_id)):
        add("error", "the id must be lowercase letters, digits and dashes, like ice-at-home", "id")
    elif entry_id and entry_id != stem:
        add("error", f"the id '{entry_id}' does not match the file name '{stem}.yaml'; rename one", "id")
    category = data.get("category")
    if category is not None and category not in CATEGORIES:
        add("error", f"unknown category '{category}'. Use one of: {', '.join(CATEGORIES)}", "category")
    sources = data.get("sources") or []
    if not isinstance(sources, list) or not all(isinstance(s, str) and s.strip() for s in sources):
        add("error", "sources must be a list of URLs or references", "sources")
        sources = []
    reviewed = _date_field(data, "reviewed", add)
    review_by = _date_field(data, "review_by", add)
    if review_by and review_by < today:
        add("warning", f"review_by {review_by} has passed: re-check the facts, then set "
            "reviewed: and a new review_by:", "review_by")
    related = data.get("related") or []
    if not isinstance(related, list) or not all(isinstance(r, str) for r in related):
        add("error", "related must be a list of entry ids", "related")
        related = []

    translations: dict[str, Translation] = {}
    for lang in LANGUAGES:
        block = data.get(lang)
        if block is None:
            add("error", f"the language '{lang}' is missing: every entry needs en, pt, es and ht", lang=lang)
            continue
        translation = _parse_translation(block, lang, add, data.lines.get(lang))
        if translation:
            translations[lang] = translation
    if any(i.level == "error" for i in issues) or not entry_id:
        return None, issues
    notes = data.get("notes") or ""
    return Entry(entry_id, category, tuple(sources), reviewed, review_by, tuple(related),
                 translations, rel, data.line, str(notes)), issues


def _date_field(data, key, add):
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, _NotADate):
        add("error", f"{key}: {value} is not a real date (no such day in that month); write "
            "YYYY-MM-DD, like 2026-11-25", key)
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    add("error", f"{key} must be a date written YYYY-MM-DD, like 2026-11-25", key)
    return None


def _parse_translation(block, lang: str, add, block_line) -> Translation | None:
    if not isinstance(block, dict):
        add("error", f"'{lang}:' must contain title:, questions: and answer:", lang=lang, line=block_line)
        return None
    ok = True

    def err(message, key=None, level="error"):
        nonlocal ok
        ok = ok and level != "error"
        add(level, message, lang=lang, line=block.lines.get(key) if key else block.line)

    for key in block.duplicate_keys:
        err(f"the field '{key}' appears twice; keep one")
    for key in block:
        if key not in LANGUAGE_FIELDS:
            err(f"unknown field '{key}'. Allowed: {', '.join(sorted(LANGUAGE_FIELDS))}", key)
    for key in REQUIRED_LANGUAGE_FIELDS:
        if block.get(key) in (None, "", []):
            err(f"missing '{key}'")
    title = block.get("title")
    if title is not None and not isinstance(title, str):
        err("title must be text", "title")
    elif title and len(title) > MAX_TITLE:
        err(f"the title is {len(title)} characters; at most {MAX_TITLE} fit on a button", "title")
    questions = block.get("questions") or []
    if not isinstance(questions, list) or not all(isinstance(q, (str, int, float)) for q in questions):
        err("questions must be a list, one question per line starting with '- '", "questions")
        questions = []
    questions = [str(q) for q in questions]
    if questions and len(questions) < MIN_QUESTIONS:
        err(f"only {len(questions)} questions: write at least {MIN_QUESTIONS} (better "
            f"{RECOMMENDED_QUESTIONS}) ways people ask this", "questions")
    elif questions and len(questions) < RECOMMENDED_QUESTIONS:
        err(f"only {len(questions)} questions: {RECOMMENDED_QUESTIONS} or more help the bot find "
            "this answer", "questions", level="warning")
    examples = block.get("examples") or []
    if not isinstance(examples, list) or not all(isinstance(q, (str, int, float)) for q in examples):
        err("examples must be a list, one message per line starting with '- '", "examples")
        examples = []
    examples = [str(q) for q in examples]
    seen: set[str] = set()
    for key, items in (("questions", questions), ("examples", examples)):
        for q in items:
            norm = normalize_known(q)
            if not norm:
                err(f"the {key[:-1]} {q!r} has no words", key)
            elif norm in seen:
                err(f"{q!r} is written twice", key, level="warning")
            seen.add(norm)
    if questions:
        phrasings = [*questions, *examples]
        situations = sum(1 for q in phrasings if is_situation(q))
        long = sum(1 for q in phrasings if sentence_count(q) >= 2)
        if (len(phrasings) < MIN_PHRASINGS or situations < MIN_SITUATIONS or long < MIN_LONG):
            err(f"{len(phrasings)} phrasings ({situations} describe a situation, {long} are long "
                f"messages): the matcher learns best from at least {MIN_PHRASINGS}, of which "
                f"{MIN_SITUATIONS} situations told in the first person and {MIN_LONG} messages of "
                "2-4 sentences; add them under examples:", "examples" if examples else "questions",
                level="warning")
    keywords = block.get("keywords") or []
    if not isinstance(keywords, list):
        err("keywords must be a list", "keywords")
        keywords = []
    answer = block.get("answer")
    if answer is not None and not isinstance(answer, str):
        err("answer must be text", "answer")
    elif answer:
        answer = answer.strip()
        for problem in check_html(answer):
            err(f"Telegram would reject this answer: {problem}", "answer")
        if len(answer) > MAX_ANSWER:
            err(f"the answer is {len(answer)} characters; the limit is {MAX_ANSWER}. Shorten it or "
                "split it into two entries", "answer")
        elif visible_length(answer) > LONG_ANSWER:
            err(f"the answer is {visible_length(answer)} characters; under about 900 reads better on "
                "a phone", "answer", level="warning")
    translated_from = block.get("translated_from")
    if not ok:
        return None
    return Translation(str(title), tuple(questions), tuple(str(k) for k in keywords), answer,
                       str(translated_from) if translated_from else None, tuple(examples))


def _cross_checks(kb: KnowledgeBase) -> list[Issue]:
    """Checks across entries: related ids exist, no phrasing belongs to two entries."""
    issues: list[Issue] = []
    owner: dict[str, tuple[str, str]] = {}
    for entry in kb.entries.values():
        for rel_id in entry.related:
            if rel_id not in kb.entries:
                issues.append(Issue("warning", entry.file, entry.line,
                                    f"related: '{rel_id}' is not an entry id; its button is left out",
                                    entry.id))
        for lang, tr in entry.translations.items():
            for q in (*tr.phrasings, tr.title):
                norm = normalize_known(q)
                if not norm:
                    continue
                other = owner.get(norm)
                if other and other[0] != entry.id:
                    issues.append(Issue(
                        "error", entry.file, entry.line,
                        f"the phrasing {q!r} is also in entry {other[0]} [{other[1]}]: the bot "
                        "cannot tell them apart. Reword or remove one of them", entry.id, lang))
                owner.setdefault(norm, (entry.id, lang))
    return issues


def kb_to_json(kb: KnowledgeBase) -> list[dict]:
    """The loaded knowledge base as plain data (for `kb dump`)."""
    out = []
    for entry in sorted(kb.entries.values(), key=lambda e: (CATEGORIES.index(e.category), e.id)):
        item = {"id": entry.id, "category": entry.category, "sources": list(entry.sources),
                "reviewed": entry.reviewed.isoformat() if entry.reviewed else None,
                "review_by": entry.review_by.isoformat() if entry.review_by else None,
                "related": list(entry.related)}
        for lang, tr in entry.translations.items():
            item[lang] = {"title": tr.title, "questions": list(tr.questions),
                          "examples": list(tr.examples), "keywords": list(tr.keywords),
                          "answer": tr.answer}
        out.append(item)
    return out
