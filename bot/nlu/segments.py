"""Long messages: split into sentences and find the one that asks something.

People in trouble tell a story ("My husband went to work at 6. His boss called me. What do I do?")
and the question is often the last sentence. The matcher scores the whole message and each
sentence, so nothing of a long message is cut off and the question is not drowned by the story.
"""

from __future__ import annotations

import re

from ..text import normalize

# A sentence ends at . ! ? … (one or more) followed by a space, or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\s*\n+\s*")
MAX_SENTENCES = 12          # more than this: the rest is joined into the last segment

# Words that open or mark a question, per language (normalised: no accents, lower case).
QUESTION_WORDS = frozenset("""
    what how why when where who which can could should do does is are am may must will would
    wat wht hw
    o que oq como por que pq quando onde quem qual posso pode devo tenho preciso sera e verdade
    que como donde cuando quien cual puedo puede debo tengo necesito es verdad
    kisa ki sa kijan kouman poukisa kile kote kiyes eske mwen ka mwen dwe ou ka
""".split())

# First-person markers: a phrasing with one of these tells what is happening to the writer.
FIRST_PERSON = frozenset("""
    i im i'm my me mine we our us myself
    eu meu minha meus minhas me comigo nos nosso nossa a gente estou to tô fui tava
    yo mi mis me conmigo nosotros nuestro nuestra estoy estaba fui
    mwen m nou mw map nap
""".split())


def sentences(text: str) -> list[str]:
    """The message's sentences, in order (at most MAX_SENTENCES; the rest kept in the last one)."""
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip()) if p and p.strip()]
    parts = [p for p in parts if normalize(p)]
    if len(parts) > MAX_SENTENCES:
        parts = parts[:MAX_SENTENCES - 1] + [" ".join(parts[MAX_SENTENCES - 1:])]
    return parts


def sentence_count(text: str) -> int:
    return len(sentences(text))


def is_question(sentence: str) -> bool:
    if sentence.rstrip().endswith("?"):
        return True
    words = normalize(sentence).split()
    return bool(words) and (words[0] in QUESTION_WORDS or " ".join(words[:2]) in QUESTION_WORDS)


def question_sentence(parts: list[str]) -> str | None:
    """The sentence that asks: the last one with a question mark or a question word; None if none."""
    for part in reversed(parts):
        if is_question(part):
            return part
    return None


def is_situation(text: str) -> bool:
    """A phrasing that tells what is happening to the writer (first person, some detail)."""
    words = normalize(text.replace("'", " ")).split()
    return len(words) >= 7 and any(w in FIRST_PERSON for w in words)
