"""Messages that signal danger now ("help", "socorro", "ICE is here", "they are taking my husband").

Such a message must get the rapid response hotline and 911 in the first reply, whatever else it
matched, in any language and with typos. A lexicon does this more dependably than a model: a
missed cry for help is far worse than a hotline shown once too often. Three kinds of evidence,
in bot/nlu/data/urgent-<lang>.txt:

- `phrase:` lines: enough anywhere in a message ("they are taking", "ice is here", "me llevan").
- `cry:` lines: a call for help ("help", "socorro", "anmwe"): enough in a short message, in
  capitals (HELP) or with "!" in a message of a few lines, not in "how can I help the campaign".
- `agents:` and `now:` lines: agents named together with "now/here" in a short message
  ("ice outside rn", "la migra esta aqui").
- `soon:` and `danger:` lines: something happening now or just now ("right now", "acabou de",
  "fèk", "they are ...") with an agent or a danger ("a knife", "chest pain", "taken", "sign") in
  the same message: "they are holding a paper up to my window", "ICE fèk pran vwazin mwen".
None of the last two counts in a message that opens as a hypothetical ("what do I do if ...").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rapidfuzz import fuzz, process

from ..languages import LANGUAGES
from ..text import normalize

DATA_DIR = Path(__file__).resolve().parent / "data"
SHORT = 4          # words: a cry alone in a message this short is urgent
CLOSE = 8          # words: agents and "now" this close together in a short message
# "what do I do IF immigration knocks": a question about a situation, not one happening now
CONDITIONAL = frozenset({"if", "when", "whenever", "se", "caso", "quando", "si", "cuando"})
TYPO_SCORE = 88    # rapidfuzz ratio for a single word to count as a typo of a lexicon word


@dataclass(frozen=True)
class Lexicon:
    phrases: tuple[str, ...]
    cries: frozenset[str]        # single words or short phrases
    agents: frozenset[str]
    now: tuple[str, ...]
    soon: tuple[str, ...]
    danger: tuple[str, ...]


@lru_cache(maxsize=None)
def lexicon() -> Lexicon:
    kinds: dict[str, set[str]] = {"phrase": set(), "cry": set(), "agents": set(), "now": set(),
                                   "soon": set(), "danger": set()}
    for lang in LANGUAGES:
        path = DATA_DIR / f"urgent-{lang}.txt"
        if not path.is_file():
            continue
        for raw in path.read_text(encoding="utf-8").splitlines():
            kind, sep, value = raw.partition(":")
            if not sep or raw.startswith("#") or kind.strip() not in kinds:
                continue
            norm = normalize(value)
            if norm:
                kinds[kind.strip()].add(norm)
    return Lexicon(tuple(sorted(kinds["phrase"], key=len, reverse=True)), frozenset(kinds["cry"]),
                   frozenset(kinds["agents"]), tuple(sorted(kinds["now"])), tuple(sorted(kinds["soon"])),
                   tuple(sorted(kinds["danger"])))


def _has_phrase(padded: str, phrase: str) -> bool:
    return f" {phrase} " in padded


def _fuzzy_word(word: str, choices: frozenset[str]) -> bool:
    if word in choices:
        return True
    if len(word) < 4:
        return False
    singles = [c for c in choices if " " not in c and abs(len(c) - len(word)) <= 2 and len(c) >= 4]
    return bool(process.extractOne(word, singles, scorer=fuzz.ratio, score_cutoff=TYPO_SCORE)) if singles else False


def is_urgent(text: str) -> bool:
    lex = lexicon()
    norm = normalize(text)
    if not norm:
        return False
    words = norm.split()
    padded = f" {norm} "
    if any(_has_phrase(padded, p) for p in lex.phrases):
        return True
    loud = len(words) <= SHORT or (len(words) <= 15 and "!" in text)
    capitals = {normalize(w) for w in re.findall(r"\b[^\W\d_]{3,}\b", text) if w.isupper()}
    for i, word in enumerate(words):
        pair = " ".join(words[i:i + 2])
        at_edge = i == 0 or i >= len(words) - 2    # "socorro, o ICE ta aqui" / "... ede m"
        if (pair in lex.cries or _fuzzy_word(word, lex.cries)) and (
                loud or word in capitals or (at_edge and len(words) <= 20)):
            return True
    shouting = text.isupper() and 2 <= len(words) <= 10   # "ICE LAKAY MWEN"
    hypothetical = bool(CONDITIONAL.intersection(words[:8]))
    if not hypothetical and len(words) <= 45 and any(_has_phrase(padded, p) for p in lex.soon):
        agents = any(w in lex.agents for w in words) or any(_has_phrase(padded, a) for a in lex.agents if " " in a)
        if agents or any(_has_phrase(padded, d) for d in lex.danger):
            return True
    if len(words) <= 25 and not hypothetical:
        agent_at = [i for i, w in enumerate(words) if w in lex.agents or _fuzzy_word(w, lex.agents)]
        if agent_at and shouting:
            return True
        if agent_at:
            for phrase in lex.now:
                for m in re.finditer(rf"(?<= ){re.escape(phrase)}(?= )", padded):
                    at = padded[:m.start()].count(" ") - 1
                    if any(abs(at - a) <= CLOSE for a in agent_at):
                        return True
    return False
