"""Fusing the rankers into one calibrated confidence, and deciding what to do with it.

For each text, the candidates are the top entries of any ranker. Each candidate is described by a
few numbers (its probability from the linear model and its lead over the next label, its BM25 score
relative to the best, its nearest-phrasing similarity, the probability of "none", the length of
the text, the share of words never seen in training). A logistic regression, trained on
out-of-fold scores of the training phrasings (the rankers never saw the phrasing being scored),
turns them into P(this candidate is the right entry). The thresholds for answering and for
suggesting are chosen on those same out-of-fold scores: never on a reporting set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

TOP_K = 5   # candidates taken from each ranker

FEATURES = ("lr_p", "lr_lead", "lr_first", "bm25_rel", "bm25_first", "bm25_top", "knn",
            "knn_lead", "knn_first", "p_none", "log_words", "unknown")


@dataclass(frozen=True)
class Scores:
    """The three rankers' scores for a batch of texts; columns are labels in one order."""

    lr: np.ndarray        # (n, labels) probabilities
    bm25: np.ndarray      # (n, labels)
    knn: np.ndarray       # (n, labels)
    words: list[int]      # words per text
    unknown: list[float]  # share of unknown words per text


def _leader(row: np.ndarray):
    """A function giving how far label j is ahead of the best other label (negative when behind)."""
    if row.shape[0] < 2:
        return lambda j: float(row[j])
    first = int(np.argmax(row))
    top = float(row[first])
    runner_up = float(np.partition(row, -2)[-2])
    return lambda j: float(row[j]) - (runner_up if j == first else top)


def candidates(scores: Scores, i: int, none_index: int | None) -> tuple[list[int], np.ndarray]:
    """Candidate label indexes for text i and their feature rows."""
    lr, bm, kn = scores.lr[i].copy(), scores.bm25[i], scores.knn[i]
    p_none = float(lr[none_index]) if none_index is not None else 0.0
    if none_index is not None:
        lr[none_index] = -1.0   # never a candidate
    picks: list[int] = []
    for row in (lr, bm, kn):
        for j in np.argpartition(-row, min(TOP_K, row.shape[0] - 1))[:TOP_K]:
            if j != none_index and j not in picks:
                picks.append(int(j))
    bm_top = float(bm.max()) if bm.size else 0.0
    lr_first, bm_first, kn_first = int(np.argmax(lr)), int(np.argmax(bm)), int(np.argmax(kn))
    lr_lead, kn_lead = _leader(lr), _leader(kn)
    common = (p_none, math.log(1 + scores.words[i]), scores.unknown[i])
    rows = [(max(float(lr[j]), 0.0), lr_lead(j), float(j == lr_first),
             float(bm[j] / bm_top) if bm_top > 0 else 0.0, float(j == bm_first and bm_top > 0),
             math.log1p(bm_top), float(kn[j]), kn_lead(j), float(j == kn_first), *common)
            for j in picks]
    return picks, np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))


class Decider:
    """P(candidate is right), from the candidate's features."""

    def __init__(self, C: float = 1.0):
        self.pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))

    def fit(self, rows: np.ndarray, truth: np.ndarray) -> "Decider":
        self.pipeline.fit(rows, truth)
        return self

    def confidence(self, rows: np.ndarray) -> np.ndarray:
        if rows.shape[0] == 0:
            return np.zeros(0)
        return self.pipeline.predict_proba(rows)[:, 1]


@dataclass(frozen=True)
class Thresholds:
    answer: float     # answer when the best candidate's confidence reaches this ...
    margin: float     # ... and leads the second by this much; otherwise:
    suggest: float    # suggest candidates from this confidence on; below: the fallback
    # what the cross-validation measured at these thresholds, on the training phrasings
    cv_top1: float = 0.0
    cv_wrong: float = 0.0
    cv_offtopic_answered: float = 0.0


def choose_thresholds(best: np.ndarray, second: np.ndarray, right: np.ndarray, offtopic: np.ndarray,
                      max_wrong: float = 0.07, max_offtopic: float = 0.05, margin: float = 0.05,
                      offtopic_suggest_share: float = 0.25, max_suggest: float = 0.45) -> Thresholds:
    """Thresholds from out-of-fold results, one row per training text.

    best/second: the top two confidences; right: the top candidate is the right entry;
    offtopic: the text is an off-topic example. The answer threshold is the lowest at which wrong
    answers stay within `max_wrong` of the in-scope texts and answers to off-topic texts within
    `max_offtopic` of those; the suggestion threshold lets at most `offtopic_suggest_share` of
    off-topic texts reach "did you mean" (and is at most `max_suggest`: a suggestion costs a tap,
    a missing one leaves someone without the answer). Out-of-fold training phrasings are harder
    than what people write (measured on the spent sets: about half the out-of-fold wrong rate),
    hence `max_wrong` above the product's 3% target."""
    in_scope = ~offtopic
    n_in, n_off = max(int(in_scope.sum()), 1), max(int(offtopic.sum()), 1)
    answer = 0.99
    for t in np.linspace(0.05, 0.99, 95):
        answered = (best >= t) & (best - second >= margin)
        wrong = (answered & in_scope & ~right).sum() / n_in
        off = (answered & offtopic).sum() / n_off
        if wrong <= max_wrong and off <= max_offtopic:
            answer = float(t)
            break
    off_best = np.sort(best[offtopic])
    if off_best.size:
        k = int(math.ceil((1 - offtopic_suggest_share) * off_best.size)) - 1
        suggest = float(min(max(off_best[max(k, 0)], 0.05), max_suggest, answer))
    else:
        suggest = min(0.2, answer)
    answered = (best >= answer) & (best - second >= margin)
    return Thresholds(
        answer=answer, margin=margin, suggest=suggest,
        cv_top1=float((answered & in_scope & right).sum() / n_in),
        cv_wrong=float((answered & in_scope & ~right).sum() / n_in),
        cv_offtopic_answered=float((answered & offtopic).sum() / n_off))
