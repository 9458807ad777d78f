"""Train the understanding model on a knowledge base, and cache it by the training data's content.

Training (at start and on every reload): the three rankers are fitted on a stratified split of
the phrasings (HOLDOUT of them left out) to get out-of-fold scores; the decision model and its
thresholds are fitted on those; then the rankers are fitted again on everything. One split instead
of K folds keeps training under ten seconds: the decision model has a dozen weights, and a quarter
of the phrasings (about 2,000) is plenty to fit them. A model for the same phrasings is taken from
the cache (memory, then a file beside the database) instead of being trained again.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedShuffleSplit

from .decision import Decider, Scores, Thresholds, candidates, choose_thresholds
from .rankers import Bm25Ranker, LinearRanker, NeighbourRanker
from .samples import NONE, Sample, fingerprint

log = logging.getLogger(__name__)

MODEL_VERSION = "nlu-5"   # change it when the model's code changes: old cache files are ignored
HOLDOUT = 0.25
MAX_HELD_OUT = 4000   # a dozen weights need no more; scoring them costs phrasings x held-out texts
CHUNK = 256        # texts scored at once (memory: CHUNK x phrasings floats)
SEED = 1


@dataclass
class Rankers:
    linear: LinearRanker
    bm25: Bm25Ranker
    knn: NeighbourRanker

    @classmethod
    def fit(cls, texts: list[str], labels: list[str]) -> "Rankers":
        linear = LinearRanker().fit(texts, labels)
        return cls(linear, Bm25Ranker().fit(texts, labels, linear.labels),
                   NeighbourRanker().fit(linear.train_chars, labels, linear.labels))

    @property
    def labels(self) -> list[str]:
        return self.linear.labels

    def scores(self, texts: list[str]) -> Scores:
        chars = self.linear.char_vectors(texts)
        return Scores(self.linear.proba(texts, chars), self.bm25.scores(texts), self.knn.scores(chars),
                      [len(t.split()) for t in texts], [self.linear.unknown_share(t) for t in texts])


@dataclass
class TrainedModel:
    rankers: Rankers
    decider: Decider
    thresholds: Thresholds
    key: str
    train_seconds: float = 0.0
    samples: int = 0
    info: dict = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return self.rankers.labels

    def rank(self, texts: list[str]) -> list[list[tuple[str, float]]]:
        """Per text: candidate entries with their confidence, best first."""
        if not texts:
            return []
        scores = self.rankers.scores(texts)
        none = self._none_index()
        per_text = [candidates(scores, i, none) for i in range(len(texts))]
        conf = self.decider.confidence(np.vstack([rows for _picks, rows in per_text]))  # one call
        out, start = [], 0
        for picks, _rows in per_text:
            c = conf[start:start + len(picks)].tolist()
            start += len(picks)
            out.append(sorted(zip((self.labels[j] for j in picks), c), key=lambda kv: -kv[1]))
        return out

    def _none_index(self) -> int | None:
        labels = self.labels
        return labels.index(NONE) if NONE in labels else None


def train(samples: list[Sample], holdout: float = HOLDOUT, seed: int = SEED) -> TrainedModel:
    started = time.perf_counter()
    texts = [s.text for s in samples]
    labels = [s.label for s in samples]
    key = fingerprint(samples, MODEL_VERSION)
    y = np.array(labels)
    rows_all, truth_all, per_text = [], [], []   # per_text: (text index, first row, rows)
    start = 0
    counts = {label: labels.count(label) for label in set(labels)}
    splittable = np.array([counts[label] >= 4 for label in labels])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n_test = min(int(holdout * int(splittable.sum())), MAX_HELD_OUT)
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=max(n_test, len(counts)), random_state=seed)
        idx_all = np.arange(len(texts))
        for train_idx, test_idx in splitter.split(idx_all[splittable], y[splittable]):
            train_idx = np.concatenate([idx_all[splittable][train_idx], idx_all[~splittable]])
            test_idx = idx_all[splittable][test_idx]
            fold = Rankers.fit([texts[i] for i in train_idx], [labels[i] for i in train_idx])
            none = fold.labels.index(NONE) if NONE in fold.labels else None
            for k, i in enumerate(test_idx):
                if k % CHUNK == 0:   # scored in chunks: the neighbour scores are dense
                    scores = fold.scores([texts[j] for j in test_idx[k:k + CHUNK]])
                picks, rows = candidates(scores, k % CHUNK, none)
                truth = np.array([fold.labels[j] == labels[i] for j in picks], dtype=bool)
                rows_all.append(rows)
                truth_all.append(truth)
                per_text.append((i, start, len(picks)))
                start += len(picks)
    rows = np.vstack(rows_all)
    truth = np.concatenate(truth_all)
    decider = Decider().fit(rows, truth)
    conf = decider.confidence(rows)
    best, second, right, offtopic = [], [], [], []
    for i, start, n in per_text:
        c = conf[start:start + n]
        t = truth[start:start + n]
        order = np.argsort(-c)
        best.append(c[order[0]] if n else 0.0)
        second.append(c[order[1]] if n > 1 else 0.0)
        right.append(bool(t[order[0]]) if n else False)
        offtopic.append(labels[i] == NONE)
    thresholds = choose_thresholds(np.array(best), np.array(second), np.array(right), np.array(offtopic))
    rankers = Rankers.fit(texts, labels)
    seconds = time.perf_counter() - started
    info = {"cv_texts": len(per_text), "holdout": holdout,
            "cv_top1": thresholds.cv_top1, "cv_wrong": thresholds.cv_wrong,
            "cv_offtopic_answered": thresholds.cv_offtopic_answered}
    log.info("understanding model trained on %d phrasings in %.1f s (cross-validated: %.1f%% answered "
             "right, %.1f%% wrong)", len(samples), seconds, 100 * thresholds.cv_top1, 100 * thresholds.cv_wrong)
    return TrainedModel(rankers, decider, thresholds, key, seconds, len(samples), info)


class ModelCache:
    """Trained models by training-data fingerprint: in memory, and as files in `directory`."""

    def __init__(self, directory: Path | None = None, keep_files: int = 3, keep_in_memory: int = 2,
                 announce=None):
        self.announce = announce    # called with a sentence before a (slow) training, e.g. print
        self.directory = directory
        self.keep_files = keep_files
        self.keep_in_memory = keep_in_memory
        self._memory: dict[str, TrainedModel] = {}

    def get_or_train(self, samples: list[Sample]) -> TrainedModel:
        key = fingerprint(samples, MODEL_VERSION)
        model = self._memory.get(key) or self._load(key)
        if model is None:
            if self.announce:
                self.announce(f"Learning the knowledge base's {len(samples):,} phrasings (once per "
                              "version of the knowledge base; about 10 seconds)...")
            model = train(samples)
            self._save(model)
        self._memory.pop(key, None)
        self._memory[key] = model        # the newest last; a few kept (a reload, a test's small KB)
        while len(self._memory) > self.keep_in_memory:
            self._memory.pop(next(iter(self._memory)))
        return model

    def _path(self, key: str) -> Path | None:
        return self.directory / f"model-{key[:32]}.pickle" if self.directory else None

    def _load(self, key: str) -> TrainedModel | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            with path.open("rb") as f:
                model = pickle.load(f)   # a file this bot wrote, in its own data folder (mode 0600)
            if isinstance(model, TrainedModel) and model.key == key:
                return model
        except Exception as exc:   # a damaged or old file: train again
            log.warning("ignoring the cached model file (%s); training again", type(exc).__name__)
        return None

    def _save(self, model: TrainedModel) -> None:
        path = self._path(model.key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".model-", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
            old = sorted(path.parent.glob("model-*.pickle"), key=lambda p: p.stat().st_mtime)
            for stale in old[:-self.keep_files]:
                stale.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not save the trained model (%s); it will be trained again next start",
                        type(exc).__name__)
