"""Answer-quality and speed benchmark for the bot's matcher, against four baselines.

It runs on the current reporting set, bench/data/heldout-v6.yaml (a list of {lang, style, text,
expect, urgent}: expect is the entry that should answer, or none for an off-topic question; style
is plain, short, situation, long, adjacent or unrelated), written by someone who never read the
knowledge base. v1-v5 are spent (bench/tune.py works on tuning-a and v1-v4). Once v6
has been used to tune anything, it is spent too: write a v7.

Per language and per style:
1. top-1: `Engine.ask(text)` answers confidently with the expected entry.
2. found: answered right, or the expected entry is the first "did you mean" suggestion.
3. confidently wrong: a confident answer with another entry (share of in-scope questions).
4. off-topic rejection: no confident answer; for an immigration-adjacent question the entry
   other-immigration-questions ("we can't answer that here, ask these people") also counts.
5. robustness: top-1 on accent-stripped copies (NFKD, combining marks removed) and on one-typo
   copies (one edit in one word of 4+ letters, from random.Random(TYPO_SEED + index)).
6. urgency: the share of urgent messages whose FIRST reply holds the rapid response hotline.
7. speed: per-question wall time of `Engine.ask` in process after a warm-up (median, p99);
   training time of the model (no cache) and its memory.

Baselines over the same knowledge base and questions (cut-offs tuned on this same set to maximise
mean(top-1, rejection), which is generous to them): rapidfuzz WRatio over every phrasing; BM25
(rank_bm25) with one document per entry; the logistic regression alone (the matcher's own linear
ranker, argmax with a probability cut-off); and the old hand-weighted matcher (bench/baselines/).

Speed at scale (skip with --no-scale): a synthetic knowledge base of N entries x 4 languages (the
real entries plus clones with word-shuffled phrasings, one pseudo-word and a unique token each),
loaded, trained, and timed.

    python bench/quality.py                       # everything, on the current reporting set
    python bench/quality.py --no-scale --verbose  # quality only, with the wrong answers listed
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import pickle
import random
import re
import statistics
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rank_bm25 import BM25Okapi
from rapidfuzz import fuzz, process

sys.path.insert(0, str(Path(__file__).resolve().parent))   # bench/baselines

from bot.contacts import LUCE_HOTLINE
from bot.engine import Engine, Knowledge
from bot.matcher import set_model_cache
from bot.nlu.model import ModelCache
from bot.i18n import load_catalogs
from bot.knowledge import KnowledgeBase, load_knowledge
from bot.languages import LANGUAGES
from bot.storage import Database
from bot.text import normalize

ROOT = Path(__file__).resolve().parent.parent
CURRENT_SET = "heldout-v6.yaml"      # the reporting set; v1-v5 and tuning-a are spent
DEFAULT_DATA = ROOT / "bench" / "data" / CURRENT_SET
DEFAULT_KNOWLEDGE = ROOT / "knowledge"

TYPO_SEED = 20_240_917          # per question: random.Random(TYPO_SEED + index)
SYNTH_SEED = 7_919              # the synthetic knowledge base
SYNTH_VOCABULARY = 20_000       # pseudo-words the synthetic entries draw from
ALPHABET = "abcdefghijklmnopqrstuvwxyz"

# Targets: (metric key, comparison, threshold, shown as)
TARGETS = {            # at least, per language (wrong: at most)
    "top1": 0.92,
    "rejection": 0.95,
    "urgency": 1.0,
    "langdetect": 0.97,
}
MAX_WRONG = 0.03
LONG_TOP1 = 0.85       # top-1 on long messages, all languages
ROBUST_GAP = 0.03      # accent-stripped and one-typo top-1 within this of the original
SPEED_TARGETS = {
    "real_p99_ms": 30.0,
    "train_s": 10.0,
    "scale_train_s": 120.0,
}
SCALE_TARGET_ENTRIES = 2000
GROUPS = (*LANGUAGES, "all")


# -- data -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Question:
    index: int
    lang: str
    text: str
    expect: str | None
    style: str = "any"
    urgent: bool = False

    @property
    def in_scope(self) -> bool:
        return self.expect is not None


def load_questions(path: Path) -> list[Question]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, list):
        raise SystemExit(f"{path}: expected a YAML list of {{lang, text, expect}}")
    out = []
    for i, item in enumerate(raw):
        lang, text = item.get("lang"), item.get("text")
        if lang not in LANGUAGES or not isinstance(text, str) or not text.strip():
            raise SystemExit(f"{path}: item {i + 1} needs lang in {LANGUAGES} and a text: {item!r}")
        expect = item.get("expect")
        expect = None if expect in (None, "none") else str(expect)
        out.append(Question(i, lang, text, expect, str(item.get("style") or "any"), bool(item.get("urgent"))))
    return out


def strip_accents(text: str) -> str:
    """NFKD, then drop combining marks: 'imigração' -> 'imigracao', 'Kreyòl' -> 'Kreyol'."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


_WORD = re.compile(r"[^\W\d_]{4,}")


def one_typo(text: str, index: int) -> str:
    """One letter-level edit in one word of 4+ letters, deterministic for a question index."""
    rng = random.Random(TYPO_SEED + index)
    words = list(_WORD.finditer(text))
    if not words:
        return text
    m = rng.choice(words)
    word = m.group()
    op = rng.choice(("delete", "insert", "substitute", "transpose"))
    i = rng.randrange(len(word))
    if op == "transpose":
        i = min(i, len(word) - 2)
        if word[i] == word[i + 1]:
            op = "delete"
        else:
            word = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == "delete":
        word = word[:i] + word[i + 1:]
    elif op == "insert":
        word = word[:i] + rng.choice(ALPHABET) + word[i:]
    elif op == "substitute":
        word = word[:i] + rng.choice([c for c in ALPHABET if c != word[i].lower()]) + word[i + 1:]
    return text[:m.start()] + word + text[m.end():]


def variants(questions: list[Question]) -> dict[str, list[str]]:
    """The texts each system is run on: original, accent-stripped and one-typo copies."""
    return {
        "orig": [q.text for q in questions],
        "accent": [strip_accents(q.text) for q in questions],
        "typo": [one_typo(q.text, q.index) for q in questions],
    }


# -- predictions and metrics -------------------------------------------------------------------

@dataclass
class Prediction:
    answer: str | None                 # the entry given as a confident answer, else None
    score: float
    candidate: str | None = None       # best-ranked entry even when not answered
    outcome: str = "answer"
    suggestions: list[str] = field(default_factory=list)
    hotline_first: bool = False        # the first reply holds the rapid response hotline


def rate(hits: int, n: int) -> dict:
    return {"hits": hits, "n": n, "rate": hits / n if n else None}


OTHER_QUESTIONS = "other-immigration-questions"
STYLES = ("plain", "short", "situation", "long", "adjacent", "unrelated")


def rejected(q: Question, p: Prediction) -> bool:
    return p.answer is None or (q.style == "adjacent" and p.answer == OTHER_QUESTIONS)


def quality_metrics(questions: list[Question], preds: dict[str, list[Prediction]],
                    detected: list[str | None] | None = None) -> dict[str, dict[str, dict]]:
    """metric -> group (en/pt/es/ht/all, style:<style>) -> {hits, n, rate}."""
    metrics: dict[str, dict[str, dict]] = {}
    groups = [*GROUPS, *(f"style:{st}" for st in STYLES)]

    def over(name, keep, hit):
        metrics[name] = {}
        for group in groups:
            sel = [q for q in questions if keep(q) and (
                group == "all" or q.lang == group or group == f"style:{q.style}")]
            metrics[name][group] = rate(sum(1 for q in sel if hit(q)), len(sel))

    orig, accent, typo = preds["orig"], preds["accent"], preds["typo"]
    over("top1", lambda q: q.in_scope, lambda q: orig[q.index].answer == q.expect)
    over("found", lambda q: q.in_scope,
         lambda q: orig[q.index].answer == q.expect or q.expect in orig[q.index].suggestions[:1])
    over("wrong", lambda q: q.in_scope,
         lambda q: orig[q.index].answer is not None and orig[q.index].answer != q.expect)
    over("rejection", lambda q: not q.in_scope, lambda q: rejected(q, orig[q.index]))
    over("accent", lambda q: q.in_scope, lambda q: accent[q.index].answer == q.expect)
    over("typo", lambda q: q.in_scope, lambda q: typo[q.index].answer == q.expect)
    over("urgency", lambda q: q.urgent, lambda q: orig[q.index].hotline_first)
    if detected is not None:
        over("langdetect", lambda q: True, lambda q: detected[q.index] == q.lang)
    return metrics


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolation percentile (numpy's default)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# -- our engine --------------------------------------------------------------------------------

def rss_mb() -> float:
    """This process's resident memory (Linux /proc), in MB."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return float("nan")


def timed_build(kb: KnowledgeBase) -> tuple[Knowledge, float, float]:
    """Knowledge.build with the model trained from scratch (no cache): seconds and MB it took."""
    set_model_cache(ModelCache())
    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    knowledge = Knowledge.build(kb)
    seconds = time.perf_counter() - t0
    gc.collect()
    return knowledge, seconds, rss_mb() - before


def make_engine(kb: KnowledgeBase) -> tuple[Engine, dict]:
    """The engine, its model trained from scratch (no cache): with training time and memory."""
    knowledge, train_s, rss_delta = timed_build(kb)
    model = knowledge.matcher.model
    return Engine(knowledge, Database(":memory:")), {
        "train_s": train_s, "rss_delta_mb": rss_delta,
        "model_mb": len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)) / 1e6,
        "samples": model.samples, "thresholds": vars(model.thresholds), "cv": model.info}


def run_engine(engine: Engine, texts: list[str]) -> list[Prediction]:
    out = []
    for text in texts:
        response = engine.ask(text)
        m = response.match
        first = response.replies[0].text if response.replies else ""
        if m is None:   # greetings, thanks, blank text: no match attempted
            out.append(Prediction(None, 0.0, None, "none", hotline_first=LUCE_HOTLINE in first))
            continue
        out.append(prediction_of(m, LUCE_HOTLINE in first))
    return out


def prediction_of(m, hotline_first: bool = False) -> Prediction:
    """A matcher's result (ours or the old one: the same fields) as a benchmark prediction."""
    return Prediction(m.entry if m.outcome == "answer" else None, m.score,
                      m.ranking[0][0] if m.ranking else None, m.outcome, list(m.suggestions), hotline_first)


def time_engine(engine: Engine, texts: list[str], repeat: int) -> list[float]:
    """Per-call milliseconds of engine.ask, `repeat` passes after one warm-up pass."""
    for text in texts:
        engine.ask(text)
    samples = []
    clock = time.perf_counter
    for _ in range(repeat):
        for text in texts:
            t0 = clock()
            engine.ask(text)
            samples.append((clock() - t0) * 1000)
    return samples


def timing_summary(samples: list[float]) -> dict:
    return {"n": len(samples), "median_ms": statistics.median(samples),
            "p99_ms": percentile(samples, 99), "max_ms": max(samples)}


# -- baselines ---------------------------------------------------------------------------------

def phrasings_of(kb: KnowledgeBase) -> list[tuple[str, str]]:
    """(entry id, phrasing) for every question, title and keyword in every language."""
    out = []
    for entry_id in sorted(kb.entries):
        for tr in kb.entries[entry_id].translations.values():
            for text in (*tr.questions, tr.title, *tr.keywords):
                out.append((entry_id, text))
    return out


class RapidfuzzBaseline:
    name = "rapidfuzz WRatio"

    def __init__(self, kb: KnowledgeBase):
        pairs = phrasings_of(kb)
        self.owners = [eid for eid, _ in pairs]
        self.phrasings = [text for _, text in pairs]

    def raw(self, text: str) -> tuple[str | None, float]:
        best = process.extractOne(text, self.phrasings, scorer=fuzz.WRatio)
        return (self.owners[best[2]], float(best[1])) if best else (None, 0.0)


class BM25Baseline:
    name = "BM25 (Okapi)"

    def __init__(self, kb: KnowledgeBase):
        docs: dict[str, list[str]] = {}
        for eid, text in phrasings_of(kb):
            docs.setdefault(eid, []).extend(normalize(text).split())
        self.ids = list(docs)
        self.bm25 = BM25Okapi([docs[i] for i in self.ids])

    def raw(self, text: str) -> tuple[str | None, float]:
        tokens = normalize(text).split()
        if not tokens:
            return None, 0.0
        scores = self.bm25.get_scores(tokens)
        best = max(range(len(scores)), key=lambda i: scores[i])
        return self.ids[best], float(scores[best])


class LinearBaseline:
    """The matcher's own logistic regression alone: argmax over entries, its probability as score."""
    name = "logistic regression alone"

    def __init__(self, kb: KnowledgeBase):
        from bot.nlu.rankers import LinearRanker
        from bot.nlu.samples import NONE, training_samples

        samples = training_samples(kb)
        self.ranker = LinearRanker().fit([s.text for s in samples], [s.label for s in samples])
        self.none = NONE

    def raw(self, text: str) -> tuple[str | None, float]:
        from bot.nlu.features import model_text

        t = model_text(text, None)
        if not t:
            return None, 0.0
        probs = self.ranker.proba([t])[0]
        order = probs.argsort()[::-1]
        for j in order:
            label = self.ranker.labels[j]
            if label != self.none:
                return label, float(probs[j])
        return None, 0.0


class OldMatcherBaseline:
    """The hand-weighted matcher the bot used before (bench/baselines/old_matcher.py), with its
    own decision: its answer threshold, not a tuned cut-off."""
    name = "old matcher"

    def __init__(self, kb: KnowledgeBase):
        from baselines.old_matcher import Matcher as OldMatcher

        self.matcher = OldMatcher(kb)

    def predict(self, text: str) -> Prediction:
        lang = self.matcher.detector.detect(text).language
        return prediction_of(self.matcher.match(text, lang))


def run_old_matcher(baseline: OldMatcherBaseline, questions: list[Question], texts: dict[str, list[str]]) -> dict:
    preds = {v: [baseline.predict(t) for t in ts] for v, ts in texts.items()}
    return {"name": baseline.name, "cutoff": float("nan"), "objective": float("nan"),
            "metrics": quality_metrics(questions, preds), "preds": preds}


def tune_cutoff(questions: list[Question], raw: list[tuple[str | None, float]]) -> tuple[float, float]:
    """The cutoff (accept when score >= cutoff) maximising mean(in-scope top-1, rejection) on
    these very questions. Returns (cutoff, objective). Ties go to the lowest cutoff."""
    inside = [q for q in questions if q.in_scope]
    outside = [q for q in questions if not q.in_scope]
    scores = sorted({s for _, s in raw})
    candidates = [*scores, (scores[-1] + 1.0) if scores else 1.0]
    best = (candidates[0], -1.0)
    for c in candidates:
        parts = []
        if inside:
            parts.append(sum(1 for q in inside if raw[q.index][0] == q.expect
                             and raw[q.index][1] >= c) / len(inside))
        if outside:
            parts.append(sum(1 for q in outside if raw[q.index][1] < c
                             or (q.style == "adjacent" and raw[q.index][0] == OTHER_QUESTIONS)) / len(outside))
        objective = sum(parts) / len(parts) if parts else 0.0
        if objective > best[1] + 1e-12:
            best = (c, objective)
    return best


def run_baseline(baseline, questions: list[Question], texts: dict[str, list[str]]) -> dict:
    raw = {v: [baseline.raw(t) for t in ts] for v, ts in texts.items()}
    cutoff, objective = tune_cutoff(questions, raw["orig"])
    preds = {v: [Prediction(eid if s >= cutoff else None, s, eid) for eid, s in rs]
             for v, rs in raw.items()}
    return {"name": baseline.name, "cutoff": cutoff, "objective": objective,
            "metrics": quality_metrics(questions, preds), "preds": preds}


# -- synthetic knowledge base ------------------------------------------------------------------

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def _pseudo_word(rng: random.Random) -> str:
    return "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(rng.randint(2, 4)))


def _entry_token(k: int) -> str:
    """A unique letters-only token per synthetic entry ('zq' never occurs in pseudo-words)."""
    letters = ""
    k += 26 * 26   # at least three letters
    while k:
        k, r = divmod(k, 26)
        letters = ALPHABET[r] + letters
    return "zq" + letters


def _entry_dict(entry, entry_id: str, perturb) -> dict:
    data = {"id": entry_id, "category": entry.category, "sources": list(entry.sources),
            "reviewed": entry.reviewed or dt.date(2026, 1, 1)}
    for lang in LANGUAGES:
        tr = entry.translations[lang]
        title, questions, keywords = perturb(tr)
        data[lang] = {"title": title, "questions": questions, "keywords": keywords,
                      "answer": tr.answer}
    return data


def write_synthetic_kb(kb: KnowledgeBase, n_entries: int, directory: Path) -> dict:
    """Write the real entries plus clones up to `n_entries` in total, as <category>/<id>.yaml."""
    rng = random.Random(SYNTH_SEED)
    vocab_rng = random.Random(SYNTH_SEED + 1)
    pool = sorted({_pseudo_word(vocab_rng) for _ in range(SYNTH_VOCABULARY * 2)})[:SYNTH_VOCABULARY]
    vocab_rng.shuffle(pool)
    originals = [kb.entries[i] for i in sorted(kb.entries)]

    def dump(data: dict):
        folder = directory / data["category"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{data['id']}.yaml").write_text(
            yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8")

    for entry in originals:
        dump(_entry_dict(entry, entry.id, lambda tr: (tr.title, list(tr.questions), list(tr.keywords))))
    n_clones = max(n_entries - len(originals), 0)
    for k in range(n_clones):
        entry = originals[k % len(originals)]
        token = _entry_token(k)

        def perturb(tr, token=token):
            questions = []
            for q in tr.questions:
                words = q.split()
                rng.shuffle(words)
                words[rng.randrange(len(words))] = rng.choice(pool)
                questions.append(" ".join([*words, token]))
            title = f"{tr.title[:40 - len(token) - 1].rstrip()} {token}"
            return title, questions, [*tr.keywords, rng.choice(pool)]

        dump(_entry_dict(entry, f"{entry.id}-syn-{k + 1}", perturb))
    return {"entries": len(originals) + n_clones, "originals": len(originals), "clones": n_clones}


def run_scale(kb: KnowledgeBase, questions: list[Question], n_entries: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-kb-") as tmp:
        directory = Path(tmp) / "knowledge"
        directory.mkdir()
        t0 = time.perf_counter()
        written = write_synthetic_kb(kb, n_entries, directory)
        write_s = time.perf_counter() - t0
        files = list(directory.rglob("*.yaml"))
        size = sum(p.stat().st_size for p in files)
        t0 = time.perf_counter()
        big_kb, issues = load_knowledge(directory)
        load_s = time.perf_counter() - t0
    knowledge, train_s, rss_delta = timed_build(big_kb)
    engine = Engine(knowledge, Database(":memory:"))
    texts = [q.text for q in questions]
    preds = run_engine(engine, texts)     # also the warm-up pass
    samples = time_engine(engine, texts, repeat)
    inside = [q for q in questions if q.in_scope]
    outside = [q for q in questions if not q.in_scope]

    def same_family(got: str | None, expect: str) -> bool:
        return got is not None and (got == expect or got.startswith(expect + "-syn-"))

    return {
        "entries_written": written["entries"], "clones": written["clones"],
        "files": len(files), "bytes": size, "write_s": write_s,
        "entries_loaded": len(big_kb),
        "load_errors": sum(1 for i in issues if i.level == "error"),
        "load_warnings": sum(1 for i in issues if i.level != "error"),
        "first_error": next((str(i) for i in issues if i.level == "error"), None),
        "load_s": load_s, "train_s": train_s, "rss_delta_mb": rss_delta,
        "phrasings_indexed": knowledge.matcher.model.samples,
        "ask": timing_summary(samples),
        "top1_strict": rate(sum(1 for q in inside if preds[q.index].answer == q.expect), len(inside)),
        "top1_family": rate(sum(1 for q in inside if same_family(preds[q.index].answer, q.expect)),
                            len(inside)),
        "rejection": rate(sum(1 for q in outside if preds[q.index].answer is None), len(outside)),
    }


# -- report ------------------------------------------------------------------------------------

def pct(r: dict | float | None) -> str:
    value = r.get("rate") if isinstance(r, dict) else r
    return "   -  " if value is None else f"{100 * value:5.1f}%"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(headers: list[str], rows: list[list[str]], first_width: int = 34) -> str:
    widths = [max(len(headers[i]), *(len(r[i]) for r in rows)) for i in range(len(headers))]
    widths[0] = max(widths[0], first_width)
    line = lambda cells: "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                                   for i, c in enumerate(cells)).rstrip()
    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(r) for r in rows)
    return "\n".join(out)


OUR_ROWS = [
    ("top1", "top-1 (confident and right)"),
    ("found", "found (answered or first suggestion)"),
    ("wrong", "confidently wrong (lower is better)"),
    ("rejection", "off-topic rejection"),
    ("accent", "accent-stripped top-1"),
    ("typo", "one-typo top-1"),
    ("urgency", "urgency: hotline in the first reply"),
    ("langdetect", "language detection"),
]


def judge(metrics: dict) -> dict[str, bool]:
    """Each target, per language where it is per language."""
    passes = {}
    for g in LANGUAGES:
        m = {k: metrics[k][g]["rate"] for k in metrics}
        passes[f"top1.{g}"] = m["top1"] is not None and m["top1"] >= TARGETS["top1"]
        passes[f"wrong.{g}"] = m["wrong"] is not None and m["wrong"] <= MAX_WRONG
        if m["rejection"] is not None:
            passes[f"rejection.{g}"] = m["rejection"] >= TARGETS["rejection"]
        if m["urgency"] is not None:
            passes[f"urgency.{g}"] = m["urgency"] >= TARGETS["urgency"]
        if m.get("langdetect") is not None:
            passes[f"langdetect.{g}"] = m["langdetect"] >= TARGETS["langdetect"]
        for v in ("accent", "typo"):
            passes[f"{v}.{g}"] = m[v] is not None and m["top1"] - m[v] <= ROBUST_GAP
    long = metrics["top1"]["style:long"]["rate"]
    if long is not None:
        passes["top1.long"] = long >= LONG_TOP1
    return passes


def report_ours(metrics: dict) -> tuple[str, dict]:
    passes = judge(metrics)
    headers = ["metric", *GROUPS]
    rows = [["questions in scope / off-topic / urgent",
             *(f"{metrics['top1'][g]['n']}/{metrics['rejection'][g]['n']}/{metrics['urgency'][g]['n']}"
               for g in GROUPS)]]
    for key, label in OUR_ROWS:
        if key not in metrics:
            continue
        cells = [label]
        for g in GROUPS:
            ok = passes.get(f"{key}.{g}")
            cells.append(pct(metrics[key][g]) + ("" if ok is None else " " + verdict(ok)))
        rows.append(cells)
    style_rows = []
    for key, label in OUR_ROWS[:4]:
        style_rows.append([label, *(pct(metrics[key][f"style:{st}"]) for st in STYLES)])
    text = table(headers, rows, first_width=40) + "\n\n" + table(
        ["by style", *STYLES], style_rows, first_width=40)
    return text, passes


def report_comparison(ours: dict, baselines: list[dict]) -> str:
    blocks = []
    for key, label in (("top1", "top-1 (confident and right)"), ("wrong", "confidently wrong"),
                       ("rejection", "off-topic rejection"), ("accent", "accent-stripped top-1"),
                       ("typo", "one-typo top-1")):
        rows = [["ours", *(pct(ours[key][g]) for g in GROUPS), pct(ours[key]["style:long"])]]
        for b in baselines:
            cut = "" if b["cutoff"] != b["cutoff"] else f" (cut-off {b['cutoff']:.2f})"
            rows.append([f"{b['name']}{cut}", *(pct(b["metrics"][key][g]) for g in GROUPS),
                         pct(b["metrics"][key]["style:long"])])
        if key == "top1":
            for b in baselines:
                cells = [f"ratio ours / {b['name']}"]
                for g in (*GROUPS, "style:long"):
                    mine, theirs = ours[key][g]["rate"], b["metrics"][key][g]["rate"]
                    cells.append("  -  " if mine is None or not theirs else f"{mine / theirs:5.2f}x")
                rows.append(cells)
        blocks.append(table([label, *GROUPS, "long"], rows, first_width=46))
    return "\n\n".join(blocks)


def ratios(ours: dict, baselines: list[dict]) -> dict:
    out = {}
    for b in baselines:
        out[b["name"]] = {}
        for g in GROUPS:
            mine, theirs = ours["top1"][g]["rate"], b["metrics"]["top1"][g]["rate"]
            out[b["name"]][g] = (mine / theirs) if mine is not None and theirs else None
    return out


def ahead_of_baselines(ours: dict, baselines: list[dict]) -> dict[str, bool]:
    return {f"ahead.{b['name']}.{g}": (ours["top1"][g]["rate"] or 0) > (b["metrics"]["top1"][g]["rate"] or 0)
            for b in baselines for g in LANGUAGES}


def describe(p: Prediction) -> str:
    if p.outcome == "answer":
        return f"answer {p.answer} ({p.score:.2f})"
    if p.outcome == "suggest":
        return f"suggest [{', '.join(p.suggestions)}] ({p.score:.2f})"
    return f"none (best {p.candidate or '-'} {p.score:.2f})"


def confusion(questions: list[Question], preds: dict[str, list[Prediction]],
              texts: dict[str, list[str]]) -> str:
    lines = ["Wrong in-scope questions (expected -> got):"]
    wrong = [q for q in questions if q.in_scope and preds["orig"][q.index].answer != q.expect]
    for q in wrong:
        lines.append(f"  [{q.lang}] {q.text!r}\n         expected {q.expect:<32} got {describe(preds['orig'][q.index])}")
    if not wrong:
        lines.append("  (none)")
    lines.append("")
    lines.append("Off-topic questions answered confidently:")
    answered = [q for q in questions if not q.in_scope and not rejected(q, preds["orig"][q.index])]
    for q in answered:
        lines.append(f"  [{q.lang}] {q.text!r}\n         got {describe(preds['orig'][q.index])}")
    if not answered:
        lines.append("  (none)")
    for variant, label in (("accent", "accent-stripped"), ("typo", "one-typo")):
        lines.append("")
        lines.append(f"Wrong {label} copies whose original was right:")
        bad = [q for q in questions if q.in_scope and preds["orig"][q.index].answer == q.expect
               and preds[variant][q.index].answer != q.expect]
        for q in bad:
            lines.append(f"  [{q.lang}] {texts[variant][q.index]!r}\n         expected {q.expect:<32} "
                         f"got {describe(preds[variant][q.index])}")
        if not bad:
            lines.append("  (none)")
    return "\n".join(lines)


def strip_preds(obj):
    return {k: v for k, v in obj.items() if k != "preds"}


# -- main --------------------------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="held-out YAML (default: %(default)s)")
    ap.add_argument("--knowledge", type=Path, default=DEFAULT_KNOWLEDGE,
                    help="knowledge base directory (default: %(default)s)")
    ap.add_argument("--scale-entries", type=int, default=SCALE_TARGET_ENTRIES,
                    help="entries in the synthetic knowledge base (default: %(default)s)")
    ap.add_argument("--no-scale", action="store_true", help="skip the synthetic-scale speed test")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed passes over the questions after the warm-up (default: %(default)s)")
    ap.add_argument("--scale-repeat", type=int, default=1,
                    help="timed passes at scale, after the warm-up pass (default: %(default)s)")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write all figures as JSON to OUT")
    ap.add_argument("--verbose", "-v", action="store_true", help="list the wrong answers")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    load_catalogs()
    questions = load_questions(args.data)
    kb, issues = load_knowledge(args.knowledge)
    errors = [i for i in issues if i.level == "error"]
    spent = args.data.name != CURRENT_SET
    print("ANSWER QUALITY BENCHMARK")
    print(f"held-out data : {args.data}  ({len(questions)} questions: "
          f"{sum(q.in_scope for q in questions)} in scope, {sum(not q.in_scope for q in questions)} off-topic, "
          f"{sum(q.urgent for q in questions)} urgent)"
          + ("  [a tuning set: not a reporting figure]" if spent else "  [the current reporting set]"))
    print(f"knowledge base: {args.knowledge}  ({len(kb)} entries loaded, {len(errors)} errors, "
          f"{len(issues) - len(errors)} warnings)")
    if errors:
        print(f"WARNING: {len(errors)} knowledge errors; running with the {len(kb)} entries that loaded. "
              f"First: {errors[0]}")
    missing = sorted({q.expect for q in questions if q.in_scope and q.expect not in kb.entries})
    if missing:
        print(f"WARNING: questions expect entries not in the knowledge base (counted as wrong): {', '.join(missing)}")
    if not kb.entries:
        print("no entries loaded: nothing to measure")
        return 1

    texts = variants(questions)
    engine, training = make_engine(kb)
    preds = {v: run_engine(engine, ts) for v, ts in texts.items()}
    detected = [engine.detect_language(q.text) for q in questions]
    ours = quality_metrics(questions, preds, detected)
    samples = time_engine(engine, texts["orig"], args.repeat)
    real_timing = timing_summary(samples)

    old = OldMatcherBaseline(kb)
    baselines = [run_baseline(RapidfuzzBaseline(kb), questions, texts),
                 run_baseline(BM25Baseline(kb), questions, texts),
                 run_baseline(LinearBaseline(kb), questions, texts),
                 run_old_matcher(old, questions, texts)]
    old_samples = []
    for _ in range(args.repeat):
        for text in texts["orig"]:
            t0 = time.perf_counter()
            old.predict(text)
            old_samples.append((time.perf_counter() - t0) * 1000)
    old_timing = timing_summary(old_samples)

    print()
    print("OUR MATCHER (Engine.ask, no language given)")
    text, passes = report_ours(ours)
    print(text)
    inside = [q for q in questions if q.in_scope]
    changed = {v: sum(1 for q in inside if texts[v][q.index] != q.text) for v in ("accent", "typo")}
    print(f"(copies that differ from the original: accent-stripped {changed['accent']} of "
          f"{len(inside)} in-scope questions, one-typo {changed['typo']} of {len(inside)})")
    print(f"(targets: top-1 >= {TARGETS['top1']:.0%} per language and >= {LONG_TOP1:.0%} on long messages; "
          f"wrong <= {MAX_WRONG:.0%}; rejection >= {TARGETS['rejection']:.0%}; accent/typo within "
          f"{ROBUST_GAP:.0%} of top-1; urgency 100%)")

    print()
    print("COMPARISON WITH BASELINES (same knowledge base, same questions)")
    print("Baseline cut-offs are tuned on this same set to maximise mean(top-1, rejection): generous to")
    print("them. Ours and the old matcher use their own thresholds, chosen without this set.")
    print()
    print(report_comparison(ours, baselines))
    passes.update(ahead_of_baselines(ours, baselines))

    print()
    print("SPEED AND SIZE")
    passes["speed.real_p99"] = real_timing["p99_ms"] < SPEED_TARGETS["real_p99_ms"]
    passes["speed.train"] = training["train_s"] < SPEED_TARGETS["train_s"]
    rows = [
        [f"real KB ({len(kb)} entries), engine.ask median", f"{real_timing['median_ms']:.2f} ms", "", ""],
        [f"real KB ({len(kb)} entries), engine.ask p99", f"{real_timing['p99_ms']:.2f} ms",
         f"< {SPEED_TARGETS['real_p99_ms']:g} ms", verdict(passes["speed.real_p99"])],
        ["old matcher, same questions, same process: median", f"{old_timing['median_ms']:.2f} ms", "", ""],
        ["old matcher: p99", f"{old_timing['p99_ms']:.2f} ms", "", ""],
        ["ratio ours / old matcher: median, p99",
         f"{real_timing['median_ms'] / old_timing['median_ms']:.2f}x, "
         f"{real_timing['p99_ms'] / old_timing['p99_ms']:.2f}x", "", ""],
        [f"training ({training['samples']} phrasings, no cache)", f"{training['train_s']:.2f} s",
         f"< {SPEED_TARGETS['train_s']:g} s", verdict(passes["speed.train"])],
        ["memory: resident growth while training", f"{training['rss_delta_mb']:.0f} MB", "", ""],
        ["memory: the model pickled (cache file)", f"{training['model_mb']:.1f} MB", "", ""],
    ]
    scale = None
    if not args.no_scale:
        print(f"(building and training a {args.scale_entries}-entry synthetic knowledge base: this "
              "takes minutes)", file=sys.stderr, flush=True)
        scale = run_scale(kb, questions, args.scale_entries, args.scale_repeat)
        n = scale["entries_loaded"]
        ok = scale["train_s"] < SPEED_TARGETS["scale_train_s"]
        if args.scale_entries == SCALE_TARGET_ENTRIES:
            passes["speed.scale_train"] = ok
        rows += [
            [f"scale ({n} entries x 4 languages), load", f"{scale['load_s']:.2f} s", "", ""],
            [f"scale, training ({scale['phrasings_indexed']} phrasings)", f"{scale['train_s']:.1f} s",
             f"< {SPEED_TARGETS['scale_train_s']:g} s", verdict(ok)],
            ["scale, memory growth while training", f"{scale['rss_delta_mb']:.0f} MB", "", ""],
            ["scale, engine.ask median", f"{scale['ask']['median_ms']:.2f} ms", "", ""],
            ["scale, engine.ask p99", f"{scale['ask']['p99_ms']:.2f} ms", "", ""],
        ]
    print(table(["measure", "figure", "target", ""], rows, first_width=48))
    print(f"(engine.ask timed in process after a warm-up pass: {args.repeat} passes x {len(questions)} "
          f"questions, max {real_timing['max_ms']:.2f} ms; no sentence-embedding model is used)")
    cv = training["cv"]
    th = training["thresholds"]
    print(f"(thresholds chosen by {cv.get('holdout', 0):.0%} held-out split on the knowledge base's "
          f"phrasings: answer >= {th['answer']:.2f} with a lead of {th['margin']:.2f}, suggest >= "
          f"{th['suggest']:.2f}; out of fold: {cv.get('cv_top1', 0):.1%} answered right, "
          f"{cv.get('cv_wrong', 0):.1%} wrong)")

    print()
    missed = sorted(k for k, ok in passes.items() if not ok)
    print(f"TARGETS: {sum(passes.values())} of {len(passes)} met"
          + (f"; missed: {', '.join(missed)}" if missed else ""))

    if args.verbose:
        print()
        print("CONFUSION (our matcher)")
        print(confusion(questions, preds, texts))

    if args.json:
        result = {
            "data": str(args.data), "reporting_set": not spent, "knowledge": str(args.knowledge),
            "questions": len(questions), "entries": len(kb),
            "targets": {**TARGETS, "max_wrong": MAX_WRONG, "long_top1": LONG_TOP1,
                        "robust_gap": ROBUST_GAP, **SPEED_TARGETS},
            "ours": ours, "training": training,
            "baselines": [strip_preds(b) for b in baselines],
            "ratio_top1_ours_over_baseline": ratios(ours, baselines),
            "speed": {"real": real_timing, "old_matcher": old_timing, "scale": scale},
            "passes": passes,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
