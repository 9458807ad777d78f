"""Find the knowledge-base entry a question is about.

Two scorers, combined:
- lexical: rare words count more than common ones (IDF over entries), after per-language
  normalisation, chat abbreviations, stop words and Snowball stemming; unknown words are matched to
  the vocabulary with rapidfuzz to survive typos. Words the knowledge base has never seen lower the
  score, which is how off-topic questions are told apart.
- fuzzy: rapidfuzz's similarity between the whole question and each phrasing of an entry, in every
  language.

The result is one of three outcomes: a confident answer, up to three suggestions ("did you mean"),
or nothing (the fallback). A confident answer needs both a high score and a margin over the next
entry, so that a near tie becomes a suggestion instead of a confident wrong answer.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

import snowballstemmer
from rapidfuzz import fuzz, process

from .knowledge import KnowledgeBase
from .langdetect import LanguageDetector
from .languages import LANGUAGES
from .lexicon import STOP_WORDS
from .text import expand_abbreviations, normalize

_SNOWBALL = {"en": "english", "pt": "portuguese", "es": "spanish"}


@dataclass(frozen=True)
class Thresholds:
    answer: float = 0.55     # a confident answer needs at least this score ...
    margin: float = 0.08     # ... and this lead over the next entry,
    sure: float = 0.80       # unless the score is this high.
    suggest: float = 0.33    # below this: fallback
    suggest_window: float = 0.20  # suggestions within this distance of the best
    lexical_weight: float = 0.6


@dataclass
class MatchResult:
    outcome: str                     # "answer", "suggest" or "none"
    entry: str | None                # the entry answered, if outcome == "answer"
    score: float                     # the best entry's score, 0..1
    suggestions: list[str] = field(default_factory=list)
    ranking: list[tuple[str, float]] = field(default_factory=list)


@lru_cache(maxsize=None)
def _stemmer(lang: str):
    name = _SNOWBALL.get(lang)
    return snowballstemmer.stemmer(name) if name else None


@lru_cache(maxsize=200_000)
def stem(word: str, lang: str) -> str:
    """Snowball stem for en/pt/es. Kreyòl barely inflects: words are kept, minus a plural 'yo'."""
    stemmer = _stemmer(lang)
    if stemmer is None:
        return word
    return stemmer.stemWord(word)


def content_terms(text: str, lang: str) -> list[str]:
    """Normalised, abbreviation-expanded, stop-word-free, stemmed terms of `text` in `lang`."""
    words = expand_abbreviations(normalize(text).split(), lang)
    stops = STOP_WORDS.get(lang, frozenset())
    return [stem(w, lang) for w in words if w not in stops and len(w) > 1 or w.isdigit()]


class Matcher:
    """An index over a knowledge base; build once, query many times."""

    def __init__(self, kb: KnowledgeBase, thresholds: Thresholds | None = None):
        self.thresholds = thresholds or Thresholds()
        self.entry_ids: list[str] = sorted(kb.entries)
        self._phrases: list[str] = []
        self._phrase_owner: list[int] = []
        postings: dict[str, dict[int, float]] = defaultdict(dict)
        texts_by_language: dict[str, list[str]] = {lang: [] for lang in LANGUAGES}
        term_entries: dict[str, set[int]] = defaultdict(set)
        entry_terms: list[dict[str, float]] = []
        self._vocabulary: dict[str, set[str]] = defaultdict(set)  # surface word -> terms
        for idx, entry_id in enumerate(self.entry_ids):
            entry = kb.entries[entry_id]
            weights: dict[str, float] = {}
            for lang, tr in entry.translations.items():
                phrasings = [*tr.questions, tr.title, *tr.keywords]
                texts_by_language[lang].extend([*phrasings, tr.answer])
                for phrase in phrasings:
                    words = expand_abbreviations(normalize(phrase).split(), lang)
                    self._phrases.append(" ".join(words))
                    self._phrase_owner.append(idx)
                    stops = STOP_WORDS[lang]
                    for word in words:
                        if word in stops or (len(word) < 2 and not word.isdigit()):
                            continue
                        term = f"{lang}:{stem(word, lang)}"
                        self._vocabulary[word].add(term)
                        weights[term] = 1.0
                        term_entries[term].add(idx)
            entry_terms.append(weights)
        n = max(len(self.entry_ids), 1)
        self._idf = {t: math.log(1 + n / len(ids)) for t, ids in term_entries.items()}
        self._max_idf = math.log(1 + n)
        for idx, weights in enumerate(entry_terms):
            for term in weights:
                postings[term][idx] = self._idf[term]
        self._postings = dict(postings)
        self._surface_words = list(self._vocabulary)
        self.detector = LanguageDetector(texts_by_language)

    # -- query side -------------------------------------------------------------------------

    def _query_terms(self, words: list[str], lang: str | None) -> list[set[str]]:
        """For each query word, the index terms it may stand for (in any language)."""
        out: list[set[str]] = []
        langs = [lang] if lang else list(LANGUAGES)
        for word in words:
            if any(word in STOP_WORDS[lg] for lg in langs) and word not in self._vocabulary:
                continue
            terms = set(self._vocabulary.get(word, ()))
            for lg in LANGUAGES:
                candidate = f"{lg}:{stem(word, lg)}"
                if candidate in self._idf:
                    terms.add(candidate)
            if not terms and len(word) >= 4 and not word.isdigit():
                close = process.extract(word, self._surface_words, scorer=fuzz.ratio,
                                        score_cutoff=80, limit=3)
                for surface, _score, _ in close:
                    terms |= self._vocabulary[surface]
            if all(word in STOP_WORDS[lg] for lg in LANGUAGES) and not terms:
                continue
            out.append(terms)
        return out

    def _lexical(self, term_sets: list[set[str]]) -> dict[int, float]:
        if not term_sets:
            return {}
        scores: dict[int, float] = defaultdict(float)
        total = 0.0
        for terms in term_sets:
            if not terms:
                total += self._max_idf * 0.6   # an unknown word: evidence against every entry
                continue
            best_idf = max(self._idf[t] for t in terms)
            total += best_idf
            gained: dict[int, float] = {}
            for term in terms:
                for idx, weight in self._postings.get(term, {}).items():
                    if weight > gained.get(idx, 0.0):
                        gained[idx] = weight
            for idx, weight in gained.items():
                scores[idx] += weight
        return {idx: min(s / total, 1.0) for idx, s in scores.items()} if total else {}

    def match(self, text: str, lang: str | None = None) -> MatchResult:
        """Score every entry for `text`; `lang` is the language the text is written in, if known."""
        words = expand_abbreviations(normalize(text).split(), lang) if lang else normalize(text).split()
        if not words:
            return MatchResult("none", None, 0.0)
        lexical = self._lexical(self._query_terms(words, lang))
        query = " ".join(words)
        fuzzy: dict[int, float] = {}
        for _phrase, score, pos in process.extract(query, self._phrases, scorer=fuzz.token_sort_ratio,
                                                   limit=40, score_cutoff=40):
            idx = self._phrase_owner[pos]
            fuzzy[idx] = max(fuzzy.get(idx, 0.0), score / 100.0)
        t = self.thresholds
        combined = {idx: t.lexical_weight * lexical.get(idx, 0.0) + (1 - t.lexical_weight) * fuzzy.get(idx, 0.0)
                    for idx in set(lexical) | set(fuzzy)}
        ranking = sorted(((self.entry_ids[i], s) for i, s in combined.items()),
                         key=lambda kv: kv[1], reverse=True)
        return self._decide(ranking)

    def _decide(self, ranking: list[tuple[str, float]]) -> MatchResult:
        t = self.thresholds
        if not ranking:
            return MatchResult("none", None, 0.0)
        best_id, best = ranking[0]
        second = ranking[1][1] if len(ranking) > 1 else 0.0
        top = ranking[:5]
        if best >= t.sure or (best >= t.answer and best - second >= t.margin):
            return MatchResult("answer", best_id, round(best, 4), [], top)
        if best >= t.suggest:
            floor = max(t.suggest, best - t.suggest_window)
            suggestions = [eid for eid, s in ranking[:3] if s >= floor]
            return MatchResult("suggest", None, round(best, 4), suggestions, top)
        return MatchResult("none", None, round(best, 4), [], top)
