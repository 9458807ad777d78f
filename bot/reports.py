"""What staff should fix: unanswered questions (grouped), unhelpful answers, stale translations."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz

from .freshness import status_table
from .knowledge import KnowledgeBase
from .storage import Database
from .text import normalize

# rapidfuzz token_sort_ratio at which two questions are one group. Not token_set_ratio: that
# scores 100 whenever one question's words are all in the other, so "a" or "deportation" would
# join any longer message containing them.
SAME_QUESTION = 80


@dataclass
class QuestionGroup:
    example: str
    count: int
    langs: set[str]
    outcomes: set[str]


def group_unanswered(rows: list[tuple[str, str, str, str]]) -> list[QuestionGroup]:
    """Group near-duplicate questions (greedy, by rapidfuzz similarity), most frequent first."""
    groups: list[tuple[str, QuestionGroup]] = []
    for _day, lang, outcome, text in rows:
        norm = normalize(text)
        for key, group in groups:
            if fuzz.token_sort_ratio(norm, key) >= SAME_QUESTION:
                group.count += 1
                group.langs.add(lang)
                group.outcomes.add(outcome)
                break
        else:
            groups.append((norm, QuestionGroup(text, 1, {lang}, {outcome})))
    return sorted((g for _k, g in groups), key=lambda g: -g.count)


def staff_report(db: Database, kb: KnowledgeBase, knowledge_dir: Path, days: int = 30,
                 top: int = 20) -> list[str]:
    """The full plain-text report for `python main.py report`."""
    since = dt.date.today() - dt.timedelta(days=days)
    rows = db.unanswered_since(since)
    lines = [f"Questions the bot could not answer in the last {days} days: {len(rows)}"]
    for group in group_unanswered(rows)[:top]:
        outcome = {frozenset({"suggest"}): "suggested only", frozenset({"none"}): "no answer"}.get(
            frozenset(group.outcomes), "no answer or suggested")
        lines.append(f"  {group.count:>4} x [{','.join(sorted(group.langs))}] {group.example}  ({outcome})")
    lines.append("")
    votes = [v for v in db.feedback_counts() if v[3] > 0]
    lines.append("Answers people said did not help (no / yes votes):")
    lines += [f"  {entry:<32} [{lang}] {no:>4} no / {yes} yes" for entry, lang, yes, no in votes[:top]] or ["  none"]
    lines.append("")
    table, totals = status_table(kb, knowledge_dir, dt.date.today())
    lines.append("Knowledge base status (STALE = another language changed since this one was reviewed):")
    lines += ["  " + line for line in table]
    lines.append("  totals: " + "; ".join(
        f"{lang}: {t['stale']} stale, {t['edited']} edited, {t['missing']} missing, {t['overdue']} overdue"
        for lang, t in totals.items()))
    return lines
