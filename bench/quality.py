"""Routing-quality and speed benchmark for the bot's matcher, against two simple baselines.

What it measures, per language (en, pt, es, ht) and overall, on a held-out set of phone-style
questions (bench/data/heldout-v1.yaml: a list of {lang, text, expect}, where expect is the entry id
that should answer, or null for an out-of-scope question):

1. in-scope top-1 accuracy: `Engine.ask(text)` gives outcome "answer" with the expected entry.
   Also "found": answered correctly, or the expected entry is among the "did you mean" suggestions.
2. out-of-scope rejection: an expect-null question does NOT get a confident answer.
3. language detection: `Engine.detect_language(text)` equals the question's language.
4. robustness: top-1 accuracy on accent-stripped copies (combining marks removed after NFKD) and on
   one-typo copies (one deletion, insertion, substitution or transposition of a letter in one word
   of 4+ letters, drawn from random.Random(TYPO_SEED + question index): deterministic, hash-free).
5. speed: per-question wall time of `Engine.ask` (in process, after a warm-up pass), median and p99.

Baselines over the same knowledge base, with the same metrics (except language detection):
- rapidfuzz: `process.extractOne(query, phrasings, scorer=fuzz.WRatio)` over every question, title
  and keyword of every entry in every language, raw text; a score below a cutoff is a rejection.
- BM25 (rank_bm25.BM25Okapi): one document per entry (all its phrasings, all languages), tokens
  `bot.text.normalize(t).split()`; top-1 = best-scoring entry; a top score below a cutoff rejects.
Each baseline's cutoff is the one that maximises mean(in-scope top-1, rejection) on this same
held-out data: tuned on the test set, which is generous to the baselines.

Speed at scale (skip with --no-scale): a synthetic knowledge base of N entries x 4 languages
(the real entries plus clones "<id>-syn-<k>" whose questions are word-shuffled, have one word
replaced by a pseudo-word from a fixed pool of SYNTH_VOCABULARY words, and carry a unique per-entry
token so that no phrasing is shared between entries) is written as YAML into a temporary directory
in the knowledge/ layout, then timed: load (load_knowledge), index (Knowledge.build), and
per-question `Engine.ask` over the held-out questions.

Run from the repository root, in the project's venv:

    python bench/quality.py                       # everything, 2,000-entry scale test
    python bench/quality.py --no-scale --verbose  # quality only, with the confusion listing
    python bench/quality.py --data bench/data/heldout-v2.yaml --json out.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
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

from bot.engine import Engine, Knowledge
from bot.i18n import load_catalogs
from bot.knowledge import KnowledgeBase, load_knowledge
from bot.languages import LANGUAGES
from bot.storage import Database
from bot.text import normalize

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / "bench" / "data" / "heldout-v1.yaml"
DEFAULT_KNOWLEDGE = ROOT / "knowledge"

TYPO_SEED = 20_240_917          # per question: random.Random(TYPO_SEED + index)
SYNTH_SEED = 7_919              # the synthetic knowledge base
SYNTH_VOCABULARY = 20_000       # pseudo-words the synthetic entries draw from
ALPHABET = "abcdefghijklmnopqrstuvwxyz"

# Targets: (metric key, comparison, threshold, shown as)
TARGETS = {
    "top1": 0.92,
    "accent": 0.88,
    "typo": 0.88,
    "rejection": 0.90,
    "langdetect": 0.97,
}
SPEED_TARGETS = {
    "real_median_ms": 2.0,
    "real_p99_ms": 10.0,
    "scale_load_index_s": 3.0,
    "scale_p99_ms": 50.0,
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
        out.append(Question(i, lang, text, str(expect) if expect is not None else None))
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


def rate(hits: int, n: int) -> dict:
    return {"hits": hits, "n": n, "rate": hits / n if n else None}


def quality_metrics(questions: list[Question], preds: dict[str, list[Prediction]],
                    detected: list[str | None] | None = None) -> dict[str, dict[str, dict]]:
    """metric -> group (en/pt/es/ht/all) -> {hits, n, rate}."""
    metrics: dict[str, dict[str, dict]] = {}

    def over(name, keep, hit):
        metrics[name] = {}
        for group in GROUPS:
            sel = [q for q in questions if keep(q) and (group == "all" or q.lang == group)]
            metrics[name][group] = rate(sum(1 for q in sel if hit(q)), len(sel))

    orig, accent, typo = preds["orig"], preds["accent"], preds["typo"]
    over("top1", lambda q: q.in_scope, lambda q: orig[q.index].answer == q.expect)
    over("found", lambda q: q.in_scope,
         lambda q: orig[q.index].answer == q.expect or q.expect in orig[q.index].suggestions)
    over("rejection", lambda q: not q.in_scope, lambda q: orig[q.index].answer is None)
    over("accent", lambda q: q.in_scope, lambda q: accent[q.index].answer == q.expect)
    over("typo", lambda q: q.in_scope, lambda q: typo[q.index].answer == q.expect)
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

def make_engine(kb: KnowledgeBase) -> Engine:
    return Engine(Knowledge.build(kb), Database(":memory:"))


def run_engine(engine: Engine, texts: list[str]) -> list[Prediction]:
    out = []
    for text in texts:
        m = engine.ask(text).match
        if m is None:   # greetings, thanks, blank text: no match attempted
            out.append(Prediction(None, 0.0, None, "none"))
            continue
        out.append(Prediction(m.entry if m.outcome == "answer" else None, m.score,
                              m.ranking[0][0] if m.ranking else None, m.outcome, list(m.suggestions)))
    return out


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
            parts.append(sum(1 for q in outside if raw[q.index][1] < c) / len(outside))
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
    t0 = time.perf_counter()
    knowledge = Knowledge.build(big_kb)
    index_s = time.perf_counter() - t0
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
        "load_s": load_s, "index_s": index_s, "load_index_s": load_s + index_s,
        "phrasings_indexed": len(knowledge.matcher._phrases),
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
    ("top1", "in-scope top-1 accuracy"),
    ("found", "found (top-1 or among suggestions)"),
    ("rejection", "out-of-scope rejection"),
    ("langdetect", "language detection"),
    ("accent", "accent-stripped top-1"),
    ("typo", "one-typo top-1"),
]


def report_ours(metrics: dict) -> tuple[str, dict]:
    headers = ["metric", *GROUPS, "target"]
    rows, passes = [], {}
    counts = ["questions in scope / out of scope"]
    for g in GROUPS:
        counts.append(f"{metrics['top1'][g]['n']}/{metrics['rejection'][g]['n']}")
    rows.append([*counts, ""])
    for key, label in OUR_ROWS:
        target = TARGETS.get(key)
        cells = [label]
        for g in GROUPS:
            r = metrics[key][g]
            if target is not None and r["rate"] is not None:
                ok = r["rate"] >= target
                passes[f"{key}.{g}"] = ok
                cells.append(f"{pct(r)} {verdict(ok)}")
            else:
                cells.append(pct(r) + "     ")
        cells.append(f">= {100 * target:.0f}%" if target is not None else "")
        rows.append(cells)
    return table(headers, rows), passes


def report_comparison(ours: dict, baselines: list[dict]) -> str:
    blocks = []
    for key, label in (("top1", "in-scope top-1 accuracy"), ("rejection", "out-of-scope rejection"),
                       ("accent", "accent-stripped top-1"), ("typo", "one-typo top-1")):
        rows = [["ours", *(pct(ours[key][g]) for g in GROUPS)]]
        for b in baselines:
            rows.append([f"{b['name']} (cutoff {b['cutoff']:.2f})",
                         *(pct(b["metrics"][key][g]) for g in GROUPS)])
        if key == "top1":
            for b in baselines:
                cells = [f"ratio ours / {b['name']}"]
                for g in GROUPS:
                    mine, theirs = ours[key][g]["rate"], b["metrics"][key][g]["rate"]
                    cells.append("  -  " if mine is None or not theirs else f"{mine / theirs:5.2f}x")
                rows.append(cells)
        blocks.append(table([label, *GROUPS], rows, first_width=40))
    return "\n\n".join(blocks)


def ratios(ours: dict, baselines: list[dict]) -> dict:
    out = {}
    for b in baselines:
        out[b["name"]] = {}
        for g in GROUPS:
            mine, theirs = ours["top1"][g]["rate"], b["metrics"]["top1"][g]["rate"]
            out[b["name"]][g] = (mine / theirs) if mine is not None and theirs else None
    return out


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
    lines.append("Out-of-scope questions answered confidently:")
    answered = [q for q in questions if not q.in_scope and preds["orig"][q.index].answer is not None]
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
    print("ROUTING QUALITY BENCHMARK")
    print(f"held-out data : {args.data}  ({len(questions)} questions: "
          f"{sum(q.in_scope for q in questions)} in scope, {sum(not q.in_scope for q in questions)} out of scope)")
    print(f"knowledge base: {args.knowledge}  ({len(kb)} entries loaded, {len(errors)} errors, "
          f"{len(issues) - len(errors)} warnings)")
    if errors:
        print(f"WARNING: load_knowledge reported {len(errors)} errors (of {len(issues)} issues); "
              f"running with the {len(kb)} entries that loaded. First: {errors[0]}")
    missing = sorted({q.expect for q in questions if q.in_scope and q.expect not in kb.entries})
    if missing:
        n = sum(1 for q in questions if q.expect in missing)
        print(f"WARNING: {n} in-scope questions expect entries not in the knowledge base "
              f"(counted as wrong): {', '.join(missing)}")
    if not kb.entries:
        print("no entries loaded: nothing to measure")
        return 1

    texts = variants(questions)
    engine = make_engine(kb)
    preds = {v: run_engine(engine, ts) for v, ts in texts.items()}
    detected = [engine.detect_language(q.text) for q in questions]
    ours = quality_metrics(questions, preds, detected)
    samples = time_engine(engine, texts["orig"], args.repeat)
    real_timing = timing_summary(samples)

    baselines = [run_baseline(RapidfuzzBaseline(kb), questions, texts),
                 run_baseline(BM25Baseline(kb), questions, texts)]

    print()
    print("OUR MATCHER (Engine.ask, no language given)")
    text, passes = report_ours(ours)
    print(text)
    inside = [q for q in questions if q.in_scope]
    changed = {v: sum(1 for q in inside if texts[v][q.index] != q.text) for v in ("accent", "typo")}
    print(f"(copies that differ from the original: accent-stripped {changed['accent']} of "
          f"{len(inside)} in-scope questions, one-typo {changed['typo']} of {len(inside)})")

    print()
    print("COMPARISON WITH BASELINES (same knowledge base, same questions)")
    print("Baseline cutoffs are tuned on this same held-out data to maximise mean(top-1, rejection):")
    print("that is generous to the baselines (tuned on the test data); ours use fixed thresholds.")
    print()
    print(report_comparison(ours, baselines))

    print()
    print("SPEED")
    med_ok = real_timing["median_ms"] < SPEED_TARGETS["real_median_ms"]
    p99_ok = real_timing["p99_ms"] < SPEED_TARGETS["real_p99_ms"]
    passes["speed.real_median"], passes["speed.real_p99"] = med_ok, p99_ok
    rows = [
        [f"real KB ({len(kb)} entries), engine.ask median", f"{real_timing['median_ms']:.2f} ms",
         f"< {SPEED_TARGETS['real_median_ms']:g} ms", verdict(med_ok)],
        [f"real KB ({len(kb)} entries), engine.ask p99", f"{real_timing['p99_ms']:.2f} ms",
         f"< {SPEED_TARGETS['real_p99_ms']:g} ms", verdict(p99_ok)],
    ]
    scale = None
    if not args.no_scale:
        print(f"(building and timing a {args.scale_entries}-entry synthetic knowledge base: this "
              "takes a few minutes)", file=sys.stderr, flush=True)
        scale = run_scale(kb, questions, args.scale_entries, args.scale_repeat)
        n = scale["entries_loaded"]
        at_target = args.scale_entries == SCALE_TARGET_ENTRIES
        li_ok = scale["load_index_s"] < SPEED_TARGETS["scale_load_index_s"]
        sp_ok = scale["ask"]["p99_ms"] < SPEED_TARGETS["scale_p99_ms"]
        mark = (lambda ok: verdict(ok)) if at_target else (lambda ok: f"({verdict(ok)})")
        if at_target:
            passes["speed.scale_load_index"], passes["speed.scale_p99"] = li_ok, sp_ok
        rows += [
            [f"scale ({n} entries x 4 languages), load", f"{scale['load_s']:.2f} s", "", ""],
            [f"scale ({n} entries x 4 languages), index", f"{scale['index_s']:.2f} s", "", ""],
            [f"scale ({n} entries x 4 languages), load + index", f"{scale['load_index_s']:.2f} s",
             f"< {SPEED_TARGETS['scale_load_index_s']:g} s", mark(li_ok)],
            [f"scale ({n} entries x 4 languages), engine.ask median", f"{scale['ask']['median_ms']:.2f} ms",
             "", ""],
            [f"scale ({n} entries x 4 languages), engine.ask p99", f"{scale['ask']['p99_ms']:.2f} ms",
             f"< {SPEED_TARGETS['scale_p99_ms']:g} ms", mark(sp_ok)],
        ]
    print(table(["measure", "figure", "target", ""], rows, first_width=48))
    print(f"(engine.ask timed in process after a warm-up pass: real KB {args.repeat} passes x "
          f"{len(questions)} questions, max {real_timing['max_ms']:.2f} ms"
          + (f"; scale {args.scale_repeat} pass(es), max {scale['ask']['max_ms']:.2f} ms)" if scale else ")"))
    if scale:
        print(f"(synthetic KB: {scale['clones']} clones + {scale['entries_written'] - scale['clones']} "
              f"real entries, {scale['files']} files, {scale['bytes'] / 1e6:.1f} MB, "
              f"{scale['phrasings_indexed']} phrasings indexed; load issues: {scale['load_errors']} "
              f"errors, {scale['load_warnings']} warnings)")
        if scale["load_errors"]:
            print(f"WARNING: the synthetic KB did not load cleanly: {scale['first_error']}")
        if args.scale_entries != SCALE_TARGET_ENTRIES:
            print(f"(targets are for {SCALE_TARGET_ENTRIES} entries: verdicts in parentheses are indicative)")
        print(f"(at scale, not a quality figure: the clones are near-duplicates of the real entries, "
              f"so most answers become near-tie suggestions: top-1 {pct(scale['top1_strict']).strip()} "
              f"strict, {pct(scale['top1_family']).strip()} counting a clone of the expected entry; "
              f"rejection {pct(scale['rejection']).strip()})")

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
            "data": str(args.data), "knowledge": str(args.knowledge),
            "questions": len(questions), "entries": len(kb),
            "load_errors": len(errors), "load_warnings": len(issues) - len(errors),
            "missing_expected_entries": missing,
            "targets": {**TARGETS, **SPEED_TARGETS, "scale_entries": SCALE_TARGET_ENTRIES},
            "ours": ours,
            "baselines": [strip_preds(b) for b in baselines],
            "baseline_note": "cutoffs tuned on the test data (generous to the baselines)",
            "ratio_top1_ours_over_baseline": ratios(ours, baselines),
            "speed": {"real": real_timing, "scale": scale, "repeat": args.repeat,
                      "scale_repeat": args.scale_repeat},
            "variants_changed": changed,
            "passes": passes,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
