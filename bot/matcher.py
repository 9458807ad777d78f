"""Find the knowledge-base entry a message is about, and how sure the bot is.

The model (bot/nlu) is trained on the knowledge base's own phrasings; this module turns its
confidences into one of three outcomes: a confident answer, up to three suggestions ("did you
mean"), or nothing (the honest fallback). A long message is read whole and sentence by sentence,
so that the question at its end is not drowned by the story; a second topic it asks about is
offered as a button (`also`). Urgency (danger now) is detected separately and flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .knowledge import KnowledgeBase
from .langdetect import LanguageDetector
from .languages import LANGUAGES
from .nlu.features import model_text
from .nlu.model import ModelCache, TrainedModel
from .nlu.samples import training_samples
from .nlu.segments import FIRST_PERSON, is_question, question_sentence, sentences
from .nlu.urgency import CONDITIONAL, is_urgent
from .text import normalize

MAX_SUGGESTIONS = 3
SUGGEST_WINDOW = 0.35     # suggestions: within this much confidence of the best
SENTENCE_WEIGHT = 0.7     # one sentence of a long message counts less than the whole ...
QUESTION_WEIGHT = 0.9     # ... the sentence that asks the question a little more (tuned on tuning-a)
MAX_MATCH_CHARS = 4000    # beyond this a message is read only in part (it says so)
# Entries about enforcement happening to someone: a message matched to one of them that tells the
# writer's own situation (first person, not a question, not "if ...") is treated as urgent even
# when it has none of the lexicon's words ("two agents stopped me at the bus station").
DANGER_NOW_ENTRIES = frozenset({
    "ice-at-home", "ice-at-work", "report-ice-activity", "find-detained-person", "if-detained",
    "emergency-contacts", "stopped-in-car", "stopped-in-public", "ice-tricks", "warrants"})
MIN_LETTERS = 3           # fewer letters than this (after repeats are squeezed): nothing to understand
SHORT_WORDS = 2           # a message this short is answered only when it is an entry's own phrasing


@dataclass
class MatchResult:
    outcome: str                     # "answer", "suggest" or "none"
    entry: str | None                # the entry answered, if outcome == "answer"
    score: float                     # the best entry's confidence, 0..1
    suggestions: list[str] = field(default_factory=list)
    ranking: list[tuple[str, float]] = field(default_factory=list)
    also: list[str] = field(default_factory=list)   # another topic the message asks about
    urgent: bool = False             # the message signals danger now
    truncated: bool = False          # the message was longer than MAX_MATCH_CHARS


_DEFAULT_CACHE = ModelCache()


def set_model_cache(cache: ModelCache) -> None:
    """Where trained models are kept between starts (the bot sets a folder beside its database)."""
    global _DEFAULT_CACHE
    _DEFAULT_CACHE = cache


class Matcher:
    def __init__(self, kb: KnowledgeBase, cache: ModelCache | None = None):
        self.model: TrainedModel = (cache or _DEFAULT_CACHE).get_or_train(training_samples(kb))
        self.thresholds = self.model.thresholds
        texts_by_language: dict[str, list[str]] = {lang: [] for lang in LANGUAGES}
        owners: dict[str, set[str]] = {}   # exact phrasing (normalised) -> entries that have it
        for entry in kb.entries.values():
            for lang, tr in entry.translations.items():
                for p in (*tr.phrasings, tr.title, *tr.keywords):
                    texts_by_language[lang].append(p)
                    owners.setdefault(model_text(p, None, known=True), set()).add(entry.id)
        self.detector = LanguageDetector(texts_by_language)
        # "detainee locator", "lawyer": a phrasing only one entry has
        self._exact = {p: ids.pop() for p, ids in owners.items() if len(ids) == 1}

    def match(self, text: str, lang: str | None = None) -> MatchResult:
        """Score the entries for `text`; `lang` is the language the text is written in, if known."""
        truncated = len(text) > MAX_MATCH_CHARS
        text = text[:MAX_MATCH_CHARS]
        urgent = is_urgent(text)
        parts = sentences(text)
        segments = [text]
        weights = [1.0]
        if len(parts) > 1:
            asked = question_sentence(parts)
            for part in parts:
                segments.append(part)
                weights.append(QUESTION_WEIGHT if part == asked else SENTENCE_WEIGHT)
        texts = [model_text(s, lang) for s in segments]
        keep = [i for i, t in enumerate(texts) if t]
        if not keep or sum(c.isalpha() for c in texts[0]) < MIN_LETTERS:   # "a" x 4096, "?", "ok"
            return MatchResult("none", None, 0.0, urgent=urgent, truncated=truncated)
        ranked = self.model.rank([texts[i] for i in keep])
        combined: dict[str, float] = {}
        best_of_segment: list[tuple[str, float]] = []
        for k, i in enumerate(keep):
            for entry, conf in ranked[k]:
                weighted = conf * weights[i]
                if weighted > combined.get(entry, 0.0):
                    combined[entry] = weighted
            if ranked[k] and i > 0:
                best_of_segment.append(ranked[k][0])
        ranking = sorted(combined.items(), key=lambda kv: -kv[1])
        result = self._decide(ranking)
        urgent = urgent or self._danger_now(text, parts, result)
        if len(texts[0].split()) <= SHORT_WORDS and result.outcome == "answer":
            # "court", "ICE": too little to be sure, unless it is exactly how an entry is asked
            if self._exact.get(texts[0]) != result.entry and self._exact.get(model_text(text, None)) != result.entry:
                result = MatchResult("suggest", None, result.score,
                                     [e for e, _s in ranking[:MAX_SUGGESTIONS]], result.ranking)
        result.urgent, result.truncated = urgent, truncated
        if result.outcome == "answer":
            t = self.thresholds
            others = [e for e, c in best_of_segment if e != result.entry and c >= t.answer]
            result.also = list(dict.fromkeys(others))[:1]
        return result

    def _danger_now(self, text: str, parts: list[str], result: MatchResult) -> bool:
        words = normalize(text).split()
        top = result.ranking[0][0] if result.ranking else None
        return (result.outcome != "none" and top in DANGER_NOW_ENTRIES and 5 <= len(words) <= 45
                and not FIRST_PERSON.isdisjoint(words) and not CONDITIONAL.intersection(words[:8])
                and bool(parts) and not is_question(parts[0]))

    def _decide(self, ranking: list[tuple[str, float]]) -> MatchResult:
        t = self.thresholds
        if not ranking:
            return MatchResult("none", None, 0.0)
        best_id, best = ranking[0]
        second = ranking[1][1] if len(ranking) > 1 else 0.0
        top = [(e, round(s, 4)) for e, s in ranking[:5]]
        if best >= t.answer and best - second >= t.margin:
            return MatchResult("answer", best_id, round(best, 4), [], top)
        if best >= t.suggest:
            floor = max(t.suggest, best - SUGGEST_WINDOW)
            suggestions = [e for e, s in ranking[:MAX_SUGGESTIONS] if s >= floor]
            return MatchResult("suggest", None, round(best, 4), suggestions, top)
        return MatchResult("none", None, round(best, 4), [], top)


def model_cache_for(database: Path) -> ModelCache:
    """The model cache folder beside a database file (none for an in-memory database)."""
    if str(database) == ":memory:":
        return ModelCache()
    return ModelCache(Path(database).resolve().parent / "model-cache")
