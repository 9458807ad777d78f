"""The hand-weighted matcher the bot used until the trained model replaced it (kept for the
benchmark's comparison only; nothing in bot/ imports it).

Find the knowledge-base entry a question is about.

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

import heapq
import math
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

import snowballstemmer
from rapidfuzz import fuzz, process

from bot.knowledge import KnowledgeBase
from bot.langdetect import LanguageDetector
from bot.languages import LANGUAGES
from bot.lexicon import STOP_WORDS
from bot.text import expand_abbreviations, normalize, normalize_known

_SNOWBALL = {"en": "english", "pt": "portuguese", "es": "spanish"}


@dataclass(frozen=True)
class Thresholds:
    """Weights and cut-offs, chosen on bench/data/heldout-v1.yaml with bench/quality.py (a grid
    search over weights, then answer/margin), and reported on a fresh held-out set."""

    answer: float = 0.58     # a confident answer needs at least this score ...
    margin: float = 0.02     # ... and this lead over the next entry; otherwise suggestions.
    short_margin: float = 0.10  # the lead needed when the question has one or two words
    min_answer_evidence: float = 0.30  # ... and this much word evidence for the best entry
    suggest: float = 0.46    # below this: fallback (off-topic questions land here)
    suggest_window: float = 0.20  # suggestions within this distance of the best
    entry_weight: float = 0.3    # weight of the entry-level word score
    phrase_weight: float = 0.2   # weight of the best single phrasing's word score
    unknown_penalty: float = 1.0  # an unknown word counts as this share of the rarest word
    min_evidence: float = 0.9  # in units of the rarest word's weight: below it, scores shrink
    typo_discount: float = 0.7   # a word matched only through a typo counts this much
    typo_cutoff: float = 82      # rapidfuzz ratio needed to read a word as a typo of another
    absolute: float = 1.0        # share of the entry score from absolute evidence (not coverage)
    evidence_scale: float = 2.5  # absolute evidence saturates at this many rarest words
    candidates: int = 40         # entries scored in full (phrasings and rapidfuzz) per question

    @property
    def fuzzy_weight(self) -> float:
        return max(0.0, 1.0 - self.entry_weight - self.phrase_weight)


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


class Matcher:
    """An index over a knowledge base; build once, query many times.

    A question is scored in two stages so that it stays fast on a large knowledge base: the
    entry-level word score (an inverted index over entries) picks the candidates, then the
    phrase-level word score and rapidfuzz run only over those candidates' phrasings."""

    def __init__(self, kb: KnowledgeBase, thresholds: Thresholds | None = None):
        self.thresholds = thresholds or Thresholds()
        self.entry_ids: list[str] = sorted(kb.entries)
        self._phrases: list[str] = []            # normalised phrasings, for the fuzzy scorer
        self._phrase_terms: list[frozenset[str]] = []
        self._phrase_owner: list[int] = []       # phrasing -> entry index
        self._entry_phrases: list[range] = []    # entry index -> its phrasings' positions
        texts_by_language: dict[str, list[str]] = {lang: [] for lang in LANGUAGES}
        term_entries: dict[str, set[int]] = defaultdict(set)
        self._vocabulary: dict[str, set[str]] = defaultdict(set)  # surface word -> terms
        term_of: dict[tuple[str, str], str] = {}                   # (lang, word) -> term or ""
        for idx, entry_id in enumerate(self.entry_ids):
            entry = kb.entries[entry_id]
            first = len(self._phrases)
            for lang, tr in entry.translations.items():
                phrasings = [*tr.phrasings, tr.title, *tr.keywords]
                texts_by_language[lang].extend(phrasings)
                stops = STOP_WORDS[lang]
                for phrase in phrasings:
                    words = expand_abbreviations(normalize_known(phrase).split(), lang)
                    self._phrases.append(" ".join(words))
                    self._phrase_owner.append(idx)
                    terms = set()
                    for word in words:
                        term = term_of.get((lang, word))
                        if term is None:   # first time this word is seen in this language
                            skip = word in stops or (len(word) < 2 and not word.isdigit())
                            term = "" if skip else f"{lang}:{stem(word, lang)}"
                            term_of[(lang, word)] = term
                            if term:
                                self._vocabulary[word].add(term)
                        if term:
                            terms.add(term)
                    for term in terms:
                        term_entries[term].add(idx)
                    self._phrase_terms.append(frozenset(terms))
            self._entry_phrases.append(range(first, len(self._phrases)))
        n = max(len(self.entry_ids), 1)
        self._idf = {t: math.log(1 + n / len(ids)) for t, ids in term_entries.items()}
        self._max_idf = math.log(1 + n)
        self._entry_postings: dict[str, tuple[int, ...]] = {
            t: tuple(ids) for t, ids in term_entries.items()}
        self._phrase_weight = [sum(self._idf[t] for t in terms) for terms in self._phrase_terms]
        # term -> entry index -> positions of that entry's phrasings containing the term
        self._phrase_postings: dict[str, dict[int, list[int]]] = defaultdict(dict)
        for idx, positions in enumerate(self._entry_phrases):
            for pos in positions:
                for term in self._phrase_terms[pos]:
                    self._phrase_postings[term].setdefault(idx, []).append(pos)
        # surface words by length: a typo candidate must be of a length that can reach the cut-off
        self._words_by_length: dict[int, list[str]] = defaultdict(list)
        for word in self._vocabulary:
            self._words_by_length[len(word)].append(word)
        self._typo_lists: dict[int, list[str]] = {}   # filled on first use, per word length
        self.detector = LanguageDetector(texts_by_language)

    # -- query side -------------------------------------------------------------------------

    def _query_terms(self, words: list[str], lang: str | None) -> list[dict[str, float]]:
        """For each meaningful query word, the index terms it may stand for, with a confidence
        (1 for the word or its stem in any language, less for a likely typo); {} if unknown."""
        t = self.thresholds
        out: list[dict[str, float]] = []
        langs = [lang] if lang else list(LANGUAGES)
        for word in words:
            if any(word in STOP_WORDS[lg] for lg in langs):
                continue
            terms = dict.fromkeys(self._vocabulary.get(word, ()), 1.0)
            for lg in LANGUAGES:
                candidate = f"{lg}:{stem(word, lg)}"
                if candidate in self._idf:
                    terms[candidate] = 1.0
            if not terms and len(word) >= 4 and not word.isdigit():
                for surface, score, _ in process.extract(word, self._typo_candidates(len(word)),
                                                         scorer=fuzz.ratio, score_cutoff=t.typo_cutoff,
                                                         limit=3):
                    for term in self._vocabulary[surface]:
                        terms[term] = max(terms.get(term, 0.0), t.typo_discount * score / 100)
            if not terms and all(word in STOP_WORDS[lg] for lg in LANGUAGES):
                continue
            out.append(terms)
        return out

    def _typo_candidates(self, length: int) -> list[str]:
        """Vocabulary words whose length allows rapidfuzz's ratio to reach the typo cut-off:
        ratio = 2*matches/(len1+len2), so only lengths in [c*L/(2-c), L*(2/c-1)] qualify."""
        cached = self._typo_lists.get(length)
        if cached is None:
            c = self.thresholds.typo_cutoff / 100
            low, high = math.ceil(c * length / (2 - c)), math.floor(length * (2 / c - 1))
            cached = [w for n in range(low, high + 1) for w in self._words_by_length.get(n, ())]
            self._typo_lists[length] = cached
        return cached

    def _evidence_total(self, query: list[dict[str, float]]) -> float:
        """The weight of everything the question says (unknown words count against entries).
        A question made only of common words ("ice", "help") is weak evidence for any entry."""
        t = self.thresholds
        total = sum(max(self._idf[term] for term in terms) if terms else self._max_idf * t.unknown_penalty
                    for terms in query)
        return max(total, t.min_evidence * self._max_idf)

    def _entry_scores(self, query: list[dict[str, float]], total: float) -> dict[int, float]:
        """Entry-level word score, 0..1: coverage of the question and absolute evidence."""
        t = self.thresholds
        gain: dict[int, float] = defaultdict(float)
        for terms in query:
            best: dict[int, float] = {}
            for term, confidence in terms.items():
                weight = self._idf[term] * confidence
                for idx in self._entry_postings[term]:
                    if weight > best.get(idx, 0.0):
                        best[idx] = weight
            for idx, weight in best.items():
                gain[idx] += weight
        scale = t.evidence_scale * self._max_idf
        return {idx: (1 - t.absolute) * min(g / total, 1.0) + t.absolute * min(g / scale, 1.0)
                for idx, g in gain.items()}

    def _phrase_scores(self, query: list[dict[str, float]], total: float,
                       candidates: list[int]) -> dict[int, float]:
        """Per candidate entry, the best F1 of one of its phrasings: how much of the question
        the phrasing covers, and how much of the phrasing the question covers."""
        wanted = set(candidates)
        gain: dict[int, float] = defaultdict(float)
        for terms in query:
            best: dict[int, float] = {}
            for term, confidence in terms.items():
                weight = self._idf[term] * confidence
                for idx, positions in self._phrase_postings[term].items():
                    if idx in wanted:
                        for pos in positions:
                            if weight > best.get(pos, 0.0):
                                best[pos] = weight
            for pos, weight in best.items():
                gain[pos] += weight
        scores: dict[int, float] = {}
        for pos, g in gain.items():
            recall = min(g / total, 1.0)
            precision = min(g / self._phrase_weight[pos], 1.0)
            f1 = 2 * recall * precision / (recall + precision)
            idx = self._phrase_owner[pos]
            if f1 > scores.get(idx, 0.0):
                scores[idx] = f1
        return scores

    def match(self, text: str, lang: str | None = None) -> MatchResult:
        """Score the entries for `text`; `lang` is the language the text is written in, if known."""
        t = self.thresholds
        words = expand_abbreviations(normalize(text).split(), lang) if lang else normalize(text).split()
        if not words:
            return MatchResult("none", None, 0.0)
        query = self._query_terms(words, lang)
        total = self._evidence_total(query) if query else 1.0
        entry_scores = self._entry_scores(query, total)
        candidates = heapq.nlargest(t.candidates, entry_scores, key=entry_scores.__getitem__)
        positions = [pos for idx in candidates for pos in self._entry_phrases[idx]]
        phrase_scores = self._phrase_scores(query, total, candidates)
        fuzzy: dict[int, float] = {}
        if t.fuzzy_weight and positions:
            choices = [self._phrases[pos] for pos in positions]
            owners = [idx for idx in candidates for _pos in self._entry_phrases[idx]]
            for _phrase, score, i in process.extract(" ".join(words), choices, scorer=fuzz.token_sort_ratio,
                                                     limit=40, score_cutoff=40):
                fuzzy[owners[i]] = max(fuzzy.get(owners[i], 0.0), score / 100.0)
        combined = {idx: t.entry_weight * entry_scores.get(idx, 0.0)
                    + t.phrase_weight * phrase_scores.get(idx, 0.0)
                    + t.fuzzy_weight * fuzzy.get(idx, 0.0)
                    for idx in candidates}
        ranking = sorted(((self.entry_ids[i], s) for i, s in combined.items()),
                         key=lambda kv: kv[1], reverse=True)
        best_evidence = entry_scores.get(max(combined, key=combined.__getitem__), 0.0) if combined else 0.0
        return self._decide(ranking, short=len(query) <= 2, evidence=best_evidence)

    def _decide(self, ranking: list[tuple[str, float]], short: bool = False,
                evidence: float = 1.0) -> MatchResult:
        t = self.thresholds
        if not ranking:
            return MatchResult("none", None, 0.0)
        best_id, best = ranking[0]
        second = ranking[1][1] if len(ranking) > 1 else 0.0
        top = ranking[:5]
        margin = t.short_margin if short else t.margin
        if best >= t.answer and best - second >= margin and evidence >= t.min_answer_evidence:
            return MatchResult("answer", best_id, round(best, 4), [], top)
        if best >= t.suggest:
            floor = max(t.suggest, best - t.suggest_window)
            suggestions = [eid for eid, s in ranking[:3] if s >= floor]
            return MatchResult("suggest", None, round(best, 4), suggestions, top)
        return MatchResult("none", None, round(best, 4), [], top)
