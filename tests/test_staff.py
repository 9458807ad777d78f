"""Staff: live reloads, translation freshness, what people could not get answered, roles."""

import asyncio
import copy
import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from auxil.bot_runner import buttons_of, run_bot, sent_to
from auxil.transcript import Conversation

from bot.engine import Engine, Knowledge
from bot.freshness import entry_status, load_state, mark_reviewed
from bot.knowledge import load_knowledge
from bot.masking import mask_personal_data
from bot.reports import group_unanswered

ROOT = Path(__file__).resolve().parent.parent
ADMIN, EDITOR, ORGANIZER, NOBODY = 9001, 9002, 9003, 9004



@pytest.fixture
def kb_copy(tmp_path):
    target = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", target)
    return target



def set_answer(directory: Path, entry_id: str, lang: str, answer: str):
    path = next(directory.rglob(f"{entry_id}.yaml"))
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data[lang]["answer"] = answer
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("raw, masked", [
    ("my number is 617-555-0199 call me", "my number is [phone] call me"),
    ("liga (508) 555 0100 por favor", "liga [phone] por favor"),
    ("my A number is A123456789", "my A number is [A-number]"),
    ("A-123-456-789 where is he", "[A-number] where is he"),
    ("email me at maria.silva@example.com", "email me at [email]"),
    ("case 2023123456789 denied", "case [number] denied"),
    ("ssn 123 45 6789", "ssn [number]"),
    ("see https://x.org/a?b=1 and @maria_s", "see [link] and [handle]"),
    ("ICE na porta dia 12", "ICE na porta dia 12"),
])
def test_masking(raw, masked):
    assert mask_personal_data(raw) == masked


def test_unanswered_questions_are_recorded_masked_without_who_asked(engine):
    chat = Conversation(engine, user_id=777001)
    chat.say("how do i renew my passport, my phone is 617-555-0199")
    chat.say("what is the best pizza in town")
    chat.say("what do I do if ICE agents knock on my door")         # answered: not recorded
    with sqlite3.connect(engine.db.path) as conn:
        rows = conn.execute("SELECT * FROM unanswered").fetchall()
        columns = [c[1] for c in conn.execute("PRAGMA table_info(unanswered)")]
    assert columns == ["id", "asked_on", "lang", "outcome", "text"]
    texts = [r[4] for r in rows]
    assert texts == ["how do i renew my passport, my phone is [phone]", "what is the best pizza in town"]
    assert all(r[1] == dt.date.today().isoformat() and r[2] == "en" for r in rows)
    assert not any("777001" in str(r) for r in rows)


def test_unanswered_questions_expire(engine):
    engine.db.record_unanswered("old question", "pt", "none")
    with sqlite3.connect(engine.db.path) as conn:
        conn.execute("UPDATE unanswered SET asked_on = '2020-01-01'")
    engine.db.record_unanswered("new question", "pt", "none")
    counts = engine.db.purge_expired(dt.timedelta(days=365), dt.timedelta(days=30))
    assert counts["unanswered_questions"] == 1
    assert [r[3] for r in engine.db.unanswered_since(dt.date(2000, 1, 1))] == ["new question"]


def test_near_duplicate_questions_are_grouped():
    rows = [("d", "pt", "none", "como renovar meu passaporte"), ("d", "pt", "none", "Como renovar meu passaporte??"),
            ("d", "es", "none", "como renovar mi pasaporte"), ("d", "en", "suggest", "pizza near me")]
    groups = group_unanswered(rows)
    assert [g.count for g in groups] == [3, 1]
    assert groups[0].langs == {"pt", "es"}


def test_feedback_is_counted_without_who_voted(engine):
    chat = Conversation(engine, user_id=777002)
    chat.say("what do I do if ICE agents knock on my door")
    assert "Did this help?" in chat.text
    chat.press("No")
    assert "staff will review" in chat.text
    chat.say("what do I do if ICE agents knock on my door")
    chat.press("Yes")                  # the same person changed their mind: one vote (issue 14)
    assert engine.db.feedback_counts() == [("ice-at-home", "en", 1, 0)]
    other = Conversation(engine, user_id=777003)
    other.say("what do I do if ICE agents knock on my door")
    other.press("No")
    assert engine.db.feedback_counts() == [("ice-at-home", "en", 1, 1)]
    chat.press_data("h:no-such-entry:y@en")
    assert "no longer valid" in chat.text


def test_translation_freshness(kb_copy):
    kb, _ = load_knowledge(kb_copy)
    mark_reviewed(kb, kb_copy, "ice-at-home")
    state = load_state(kb_copy)
    assert {s.state for s in entry_status(kb.entries["ice-at-home"], state).values()} == {"ok"}

    set_answer(kb_copy, "ice-at-home", "pt", "<b>Não abra a porta.</b> Texto novo.")
    kb, _ = load_knowledge(kb_copy)
    status = entry_status(kb.entries["ice-at-home"], load_state(kb_copy))
    assert status["pt"].state == "edited"
    assert [(lang, status[lang].state, status[lang].changed) for lang in ("en", "es", "ht")] == [
        ("en", "stale", ("pt",)), ("es", "stale", ("pt",)), ("ht", "stale", ("pt",))]

    mark_reviewed(kb, kb_copy, "ice-at-home", ["es"])      # es is still right as it is
    status = entry_status(kb.entries["ice-at-home"], load_state(kb_copy))
    assert (status["es"].state, status["en"].state) == ("ok", "stale")


def kb_totals(out: str) -> dict[str, dict[str, int]]:
    """`kb status`'s "Totals per language" lines: {lang: {"ok": n, "stale": n, ...}}."""
    totals = {}
    for line in out.split("Totals per language:")[1].splitlines():
        match = re.fullmatch(r"  (\w\w): (.*)", line)
        if match:
            totals[match[1]] = {m[2].replace(" review", ""): int(m[1])
                                for m in re.finditer(r"(\d+) ([a-z]+(?: review)?)", match[2])}
    return totals


def test_kb_status_and_reviewed_commands(kb_copy):
    """One edited answer moves that entry (and only it) from ok to edited in its language and
    to STALE in the others; `kb reviewed` moves it back. Counted against the copy's own totals,
    whatever the number of entries."""
    def main(*args):
        result = subprocess.run([sys.executable, "main.py", *args, "--dir", str(kb_copy)], capture_output=True,
                                text=True, cwd=ROOT, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def row(out):
        return next(line for line in out.splitlines() if line.startswith("warrants ")).split()[1:5]

    main("kb", "reviewed", "warrants")                       # start from a reviewed entry
    before = main("kb", "status")
    assert row(before) == ["ok", "ok", "ok", "ok"]
    set_answer(kb_copy, "warrants", "pt", "<b>Novo texto em português.</b>")
    after = main("kb", "status")
    assert row(after) == ["STALE(pt)", "edited", "STALE(pt)", "STALE(pt)"]
    expected = copy.deepcopy(kb_totals(before))
    assert set(expected) == {"en", "pt", "es", "ht"}
    for lang, state in (("en", "stale"), ("pt", "edited"), ("es", "stale"), ("ht", "stale")):
        expected[lang]["ok"] -= 1
        expected[lang][state] += 1
    assert kb_totals(after) == expected
    main("kb", "reviewed", "warrants")
    again = main("kb", "status")
    assert row(again) == ["ok", "ok", "ok", "ok"] and kb_totals(again) == kb_totals(before)
    wrong = subprocess.run([sys.executable, "main.py", "kb", "reviewed", "warrants", "xx", "--dir", str(kb_copy)],
                           capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert wrong.returncode == 1 and "Unknown language(s): xx" in wrong.stderr


def staff_engine(knowledge, db, kb_dir=None):
    db.grant(EDITOR, "editor")
    db.grant(ORGANIZER, "organizer")
    return Engine(knowledge, db, admin_ids=frozenset({ADMIN}), knowledge_dir=kb_dir)


@pytest.mark.parametrize("command", ["/reload", "/report", "/grant 5 editor", "/revoke 5 editor"])
def test_privileged_commands_look_unknown_to_others(knowledge, db, kb_copy, command):
    engine = staff_engine(knowledge, db, kb_copy)
    unknown = Conversation(engine, user_id=NOBODY).say("/frobnicate").replies[0].text
    for person in (NOBODY, ORGANIZER):
        assert Conversation(engine, user_id=person).say(command).replies[0].text == unknown
    editor_reply = Conversation(engine, user_id=EDITOR).say(command).replies[0].text
    assert (editor_reply == unknown) == command.startswith(("/grant", "/revoke"))
    assert Conversation(engine, user_id=ADMIN).say(command).replies[0].text != unknown


def test_admins_grant_and_revoke(knowledge, db):
    engine = staff_engine(knowledge, db)
    admin = Conversation(engine, user_id=ADMIN)
    admin.say("/grant 5551 editor")
    assert "5551 is now editor" in admin.text
    assert engine.roles.may(5551, "reload") and not engine.roles.may(5551, "grant")
    admin.say("/revoke 5551 editor")
    assert not engine.roles.may(5551, "reload")
    admin.say("/grant someone boss")
    assert "Write it like this" in admin.text


def test_report_command_and_cli(knowledge, db, tmp_path):
    engine = staff_engine(knowledge, db)
    Conversation(engine, user_id=1).say("how do i renew my passport at the consulate")
    Conversation(engine, user_id=2).say("How do I renew my passport at the consulate?")
    editor = Conversation(engine, user_id=EDITOR)
    editor.say("/report")
    assert "last 7 days: 2" in editor.text and "2× [en]" in editor.text
    env = {**os.environ, "BOT_DATABASE": str(db.path)}
    out = subprocess.run([sys.executable, "main.py", "report", "--days", "7"], capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=60).stdout
    assert "in the last 7 days: 2" in out and "2 x [en] how do i renew my passport" in out
    assert "Knowledge base status" in out


def test_roles_cli(tmp_path):
    env = {**os.environ, "BOT_DATABASE": str(tmp_path / "b.sqlite3"), "BOT_ADMIN_IDS": "42"}
    run = lambda *a: subprocess.run([sys.executable, "main.py", "roles", *a], capture_output=True,
                                    text=True, cwd=ROOT, env=env, timeout=60).stdout
    assert run("grant", "77", "organizer").strip() == "granted"
    assert run("grant", "77", "organizer").strip() == "no change"
    assert run("list").splitlines() == ["77\torganizer", "42\tadmin (BOT_ADMIN_IDS)"]
    assert run("revoke", "77", "organizer").strip() == "revoked"


def test_reload_end_to_end_live_edit_and_broken_edit(api, knowledge, tmp_path, kb_copy, bot_errors):
    """An editor changes the Portuguese answer: the running bot answers with it within seconds
    (file watcher); a broken edit keeps the last good answer and /reload says what is wrong."""
    bot_errors.expect("knowledge reload refused: ERROR")      # the broken edit, refused as it should be
    bot_errors.expect("still serving the last good knowledge base")
    database = tmp_path / "bot.sqlite3"
    from bot.storage import Database
    Database(database).grant(EDITOR, "editor")
    question = "o que eu faço se a imigração bater na minha porta"
    live = Knowledge.build(load_knowledge(kb_copy)[0])

    async def ask(user):
        start = len(api.calls)
        api.push_message(user, question, language_code="pt-br")
        return (await api.await_call(sent_to(user), start=start)).params["text"]

    async def scenario():
        before = await ask(3001)
        set_answer(kb_copy, "ice-at-home", "pt", "<b>Resposta nova e revisada.</b> Fique calmo.")
        after = before
        for _ in range(60):                         # the watcher reloads within seconds
            await asyncio.sleep(0.25)
            after = await ask(3002)
            if "Resposta nova" in after:
                break
        path = set_answer(kb_copy, "ice-at-home", "pt", "<b>Quebrado & sem fechar")
        await asyncio.sleep(1.5)                    # the watcher sees it and refuses it
        start = len(api.calls)
        api.push_message(EDITOR, "/reload", language_code="pt-br")
        report = (await api.await_call(sent_to(EDITOR), start=start)).params["text"]
        still = await ask(3003)
        return before, after, report, still, path

    before, after, report, still, path = run_bot(api, live, database, scenario,
                                                 knowledge_dir=kb_copy)
    assert "Resposta nova" not in before
    assert "Resposta nova e revisada" in after
    assert "Não recarregado" in report
    assert "ice-at-home.yaml" in report and "entry ice-at-home [pt]" in report and "&amp;amp;" in report
    assert "Resposta nova e revisada" in still     # the last good version is still served
