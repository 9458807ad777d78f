"""Three rankers trained on the same phrasings; each gives every label a score for a batch of texts.

- `LinearRanker`: TF-IDF over character n-grams (they survive typos and missing accents) and word
  uni- and bigrams, and a multinomial logistic regression: P(label | text), "none" included.
- `Bm25Ranker`: BM25 (bm25s) with one document per label: what the text's rare words point to.
- `NeighbourRanker`: cosine similarity to the nearest single phrasing of each label, over the
  linear ranker's character n-grams: a near copy of a known phrasing is strong evidence.

The decision model (decision.py) fuses them.
"""

from __future__ import annotations

import warnings

import bm25s
import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize as l2_normalize

from .samples import NONE


# Above this many labels the logistic regression's cost (labels x n-grams per pass) outgrows a
# retrain in seconds: the linear ranker becomes a nearest-centroid model (Rocchio) over the same
# features, which trains in one pass whatever the number of entries.
MAX_REGRESSION_LABELS = 400


class _Centroids:
    """P(label | text) as a softmax over cosine similarity to each label's mean TF-IDF vector."""

    TEMPERATURE = 20.0

    def fit(self, x, labels: list[str]) -> "_Centroids":
        self.classes_ = np.array(sorted(set(labels)))
        index = {label: i for i, label in enumerate(self.classes_)}
        rows = np.array([index[label] for label in labels])
        member = sparse.csr_matrix((np.ones(len(labels), dtype=np.float32), (rows, np.arange(len(labels)))),
                                   shape=(len(self.classes_), len(labels)))
        self.centroids = l2_normalize(member @ l2_normalize(x)).T.tocsr()   # (features, labels)
        return self

    def predict_proba(self, x) -> np.ndarray:
        z = self.TEMPERATURE * (l2_normalize(x) @ self.centroids).toarray()
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


class LinearRanker:
    def __init__(self, C: float = 10.0, max_iter: int = 50):
        self.C = C
        self.max_iter = max_iter

    def fit(self, texts: list[str], labels: list[str]) -> "LinearRanker":
        self.chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
                                     dtype=np.float32, min_df=2)
        self.words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                                     token_pattern=r"(?u)\b\w+\b", dtype=np.float32, min_df=2)
        x_chars = self.chars.fit_transform(texts)
        x_words = self.words.fit_transform(texts)
        self.vocabulary = frozenset(self.words.vocabulary_)
        # saga with a loose tolerance and n-grams seen twice: 2-4 times faster than lbfgs here for
        # the same ranking (measured on an eighth of the new phrasings, held out before they were added)
        x = sparse.hstack([x_chars, x_words], format="csr")
        if len(set(labels)) > MAX_REGRESSION_LABELS:
            self.model = _Centroids().fit(x, labels)
        else:
            self.model = LogisticRegression(C=self.C, max_iter=self.max_iter, tol=5e-2, solver="saga",
                                            random_state=0)   # saga shuffles: the same model every time
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")   # may stop at max_iter: good enough for ranking
                self.model.fit(x, labels)
        self.labels: list[str] = [str(c) for c in self.model.classes_]
        self.train_chars = l2_normalize(x_chars)      # for the neighbour ranker
        return self

    def char_vectors(self, texts: list[str]):
        return self.chars.transform(texts)

    def proba(self, texts: list[str], char_vectors=None) -> np.ndarray:
        """(n_texts, n_labels) probabilities, columns in `self.labels` order."""
        x_chars = self.char_vectors(texts) if char_vectors is None else char_vectors
        x = sparse.hstack([x_chars, self.words.transform(texts)], format="csr")
        return self.model.predict_proba(x)

    def unknown_share(self, text: str) -> float:
        """The share of the text's words the training data never saw."""
        words = text.split()
        return sum(1 for w in words if w not in self.vocabulary) / len(words) if words else 1.0


class Bm25Ranker:
    """One document per label (all its phrasings); "none" gets no document."""

    def fit(self, texts: list[str], labels: list[str], order: list[str]) -> "Bm25Ranker":
        docs: dict[str, list[str]] = {label: [] for label in order}
        for text, label in zip(texts, labels):
            if label != NONE:
                docs[label].extend(text.split())
        self.order = order
        self.retriever = bm25s.BM25()
        self.retriever.index([docs[label] or ["\x00"] for label in order], show_progress=False)
        return self

    def scores(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.order)), dtype=np.float32)
        for i, text in enumerate(texts):
            tokens = text.split()
            if tokens:
                out[i] = self.retriever.get_scores(tokens)
        return out


class NeighbourRanker:
    def fit(self, train_chars, labels: list[str], order: list[str]) -> "NeighbourRanker":
        """Every label in `order` needs at least one phrasing (it does: `order` comes from them)."""
        index = {label: i for i, label in enumerate(order)}
        owner = np.array([index[label] for label in labels])
        perm = np.argsort(owner, kind="stable")        # phrasings grouped by label, in order
        self.matrix = train_chars[perm].T.tocsr()      # (features, phrasings)
        self.starts = np.searchsorted(owner[perm], np.arange(len(order)))
        return self

    def scores(self, char_vectors) -> np.ndarray:
        sims = (l2_normalize(char_vectors) @ self.matrix).toarray()   # (texts, phrasings)
        return np.maximum.reduceat(sims, self.starts, axis=1)
