"""Privacy hardening (issue 14): votes, masking, what the database file keeps, its permissions and
its health, with the real SQLite file and the real knowledge base."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from auxil.transcript import Conversation

from bot.engine import Engine
from bot.reports import staff_report

ROOT = Path(__file__).resolve().parent.parent


def main(*args, env=None, stdin="", timeout=180):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BOT_"))}
    environment.update(env or {})
    return subprocess.run([sys.executable, "main.py", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, env=environment, timeout=timeout)


# -- "Did this help?": one vote per person and answer ----------------------------------------------

def test_one_vote_per_person_per_answer_unlinked_in_reports_and_forgotten(knowledge, db, real_kb):
    engine = Engine(knowledge, db, admin_ids=frozenset({7}))
    voter, other = Conversation(engine, user_id=4_242_424_242), Conversation(engine, user_id=5_353_535_353)
    voter.say("what do I do if ICE agents knock on my door")
    assert voter.entry == "ice-at-home"
    no, yes = voter.button("No").data, voter.button("Yes").data
    for _ in range(30):
        voter.press_data(no)
    assert "staff will review" in voter.text
    assert db.feedback_counts() == [("ice-at-home", "en", 0, 1)]
    voter.press_data(yes)                                # changing one's mind replaces the vote
    assert db.feedback_counts() == [("ice-at-home", "en", 1, 0)]
    voter.press_data(no)
    other.say("what do I do if ICE agents knock on my door")
    other.press("No")
    assert db.feedback_counts() == [("ice-at-home", "en", 0, 2)]

    report = "\n".join(staff_report(db, real_kb, ROOT / "knowledge", days=7))
    assert "ice-at-home" in report and "2 no / 0 yes" in report
    editor = Conversation(engine, user_id=7)
    editor.say("/report")
    assert "ice-at-home [en]: 2 👎 / 0 👍" in editor.text
    for text in (report, editor.text):
        assert "4242424242" not in text and "5353535353" not in text

    voter.say("/forget")
    voter.press("Yes")
    assert db.feedback_counts() == [("ice-at-home", "en", 0, 1)]
    with sqlite3.connect(db.path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            assert not any(4_242_424_242 in row for row in conn.execute(f'SELECT * FROM "{table}"')), table


def test_votes_given_before_this_change_still_count(db):
    with sqlite3.connect(db.path) as conn:   # the old per-answer counters, with no person
        conn.execute("INSERT INTO feedback (entry, lang, helpful, unhelpful) VALUES ('warrants', 'pt', 3, 5)")
    db.record_feedback("warrants", "pt", False, chat_id=11)
    db.record_feedback("warrants", "pt", False, chat_id=11)
    assert db.feedback_counts() == [("warrants", "pt", 3, 6)]
