"""Tuning aid: the matcher on the tuning sets (tuning-a, and the spent held-out sets v1-v4).

Never point it at the current reporting set (bench/quality.py reports on that). Prints, per
language and style, answered-right, confidently-wrong, found and off-topic rejection, and the
out-of-fold figures the model chose its thresholds on.

    python bench/tune.py                 # tuning-a and v1-v4
    python bench/tune.py --show-wrong    # and every confidently wrong answer
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.knowledge import load_knowledge  # noqa: E402
from bot.matcher import Matcher  # noqa: E402

SPENT = [ROOT / "bench" / "data" / "tuning-a.yaml",
         *(ROOT / "bench" / "data" / f"heldout-v{i}.yaml" for i in (1, 2, 3, 4))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, nargs="*", default=SPENT)
    ap.add_argument("--show-wrong", action="store_true")
    args = ap.parse_args(argv)
    if any("v5" in p.name for p in args.data):
        raise SystemExit("v5 is the reporting set: do not tune on it")
    kb, _ = load_knowledge(ROOT / "knowledge")
    t0 = time.perf_counter()
    matcher = Matcher(kb)
    print(f"trained in {time.perf_counter() - t0:.1f} s; thresholds {matcher.thresholds}")
    stats = defaultdict(lambda: defaultdict(int))
    for path in args.data:
        for q in yaml.safe_load(path.read_text(encoding="utf-8")):
            detected = matcher.detector.detect(q["text"]).language
            r = matcher.match(q["text"], detected)
            expect = q.get("expect") if q.get("expect") not in (None, "none") else None
            style = q.get("style") or ("long" if len(q["text"]) > 160 else "any")
            for group in (q["lang"], "all", f"style:{style}"):
                s = stats[group]
                if expect:
                    s["n"] += 1
                    s["right"] += r.outcome == "answer" and r.entry == expect
                    s["wrong"] += r.outcome == "answer" and r.entry != expect
                    s["found"] += (r.entry == expect) or (expect in r.suggestions[:1])
                else:
                    s["off"] += 1
                    s["rejected"] += r.outcome != "answer" or r.entry == "other-immigration-questions"
            if args.show_wrong and expect and r.outcome == "answer" and r.entry != expect:
                print(f"  WRONG [{q['lang']}] {q['text'][:100]!r}: {r.entry} (want {expect}) {r.score}")
    print(f"{'group':14} {'n':>5} {'right':>6} {'wrong':>6} {'found':>6} {'off':>4} {'reject':>6}")
    for group, s in sorted(stats.items()):
        n, off = s["n"] or 1, s["off"] or 1
        print(f"{group:14} {s['n']:5} {100*s['right']/n:6.1f} {100*s['wrong']/n:6.1f} "
              f"{100*s['found']/n:6.1f} {s['off']:4} {100*s['rejected']/off:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
