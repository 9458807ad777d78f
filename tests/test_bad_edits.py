"""Bad edits and bad input (issue 14): an editor's mistake or an admin's typo gets a clear answer,
never a traceback, and never stops the bot from taking the next good edit."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from auxil.cli import run_main
from auxil.kb_fixtures import entry_data, write_entry
from auxil.transcript import Conversation

from bot.engine import Engine, Knowledge
from bot.knowledge import load_knowledge
from bot.matcher import Matcher, ModelCache
from bot.storage import Database

ROOT = Path(__file__).resolve().parent.parent


main = run_main


@pytest.fixture
def small_kb(tmp_path):
    root = tmp_path / "knowledge"
    write_entry(root, entry_data("bananas", "bananas"))
    write_entry(root, entry_data("tractors", "tractors", category="help"))
    return root


def small_engine(kb_dir: Path, db: Database, **kw) -> Engine:
    kb, _ = load_knowledge(kb_dir)
    return Engine(Knowledge(kb, Matcher(kb, ModelCache())), db, knowledge_dir=kb_dir, **kw)


def add_line(path: Path, after: str, line: str) -> int:
    """Insert `line` after the first line starting with `after`; returns its line number."""
    lines = path.read_text(encoding="utf-8").splitlines()
    at = next(i for i, text in enumerate(lines) if text.startswith(after)) + 1
    lines.insert(at, line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return at + 1


# -- an impossible date ---------------------------------------------------------------------------

def test_an_impossible_date_is_a_file_and_line_error(small_kb):
    line = add_line(small_kb / "rights" / "bananas.yaml", "reviewed:", "review_by: 2027-02-30")
    kb, issues = load_knowledge(small_kb)
    errors = [i for i in issues if i.level == "error"]
    assert [(e.file, e.line, e.entry) for e in errors] == [("knowledge/rights/bananas.yaml", line, "bananas")]
    assert "2027-02-30" in errors[0].message and "not a real date" in errors[0].message
    assert "bananas" not in kb.entries and "tractors" in kb.entries


@pytest.mark.parametrize("command", [["kb", "check"], ["kb", "status"], ["report"], ["chat"]])
def test_an_impossible_date_does_not_crash_any_command(small_kb, tmp_path, command):
    line = add_line(small_kb / "rights" / "bananas.yaml", "reviewed:", "review_by: 2027-02-30")
    env = {"BOT_KNOWLEDGE_DIR": str(small_kb), "BOT_DATABASE": str(tmp_path / "bot.sqlite3")}
    args = [*command, "--dir", str(small_kb)] if command[0] == "kb" else command
    result = main(*args, env=env, stdin="/menu\n")
    out = result.stdout + result.stderr
    assert "Traceback" not in out
    assert f"knowledge/rights/bananas.yaml:{line}" in out, out


def test_live_reload_survives_an_impossible_date_and_takes_the_next_good_edit(small_kb, tmp_path):
    from bot.reloader import watch_knowledge

    engine = small_engine(small_kb, Database(tmp_path / "bot.sqlite3"))
    path = small_kb / "rights" / "bananas.yaml"
    original = path.read_text(encoding="utf-8")

    async def scenario():
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_knowledge(engine, small_kb, stop))
        await asyncio.sleep(0.5)
        add_line(path, "reviewed:", "review_by: 2027-02-30")
        await asyncio.sleep(2.0)                 # the watcher sees the bad edit and refuses it
        assert not watcher.done(), watcher.exception()
        path.write_text(original.replace("About bananas.", "Bananas, revised."), encoding="utf-8")
        for _ in range(40):
            await asyncio.sleep(0.25)
            if "revised" in engine.knowledge.kb.entries["bananas"].text("en").answer:
                break
        stop.set()
        await asyncio.wait_for(watcher, 5)

    asyncio.run(scenario())
    assert "Bananas, revised." in engine.knowledge.kb.entries["bananas"].text("en").answer


# -- a deleted (or added) entry file ---------------------------------------------------------------

def test_a_reload_says_which_entries_it_added_and_removed(small_kb, tmp_path, caplog):
    engine = small_engine(small_kb, Database(tmp_path / "bot.sqlite3"), admin_ids=frozenset({7}))
    editor = Conversation(engine, user_id=7)
    (small_kb / "help" / "tractors.yaml").unlink()
    write_entry(small_kb, entry_data("combines", "combines"))
    with caplog.at_level("INFO", logger="bot.reloader"):
        editor.say("/reload")
    assert "2 entries" in editor.text
    assert "Entries added: combines" in editor.text
    assert "Entries removed (their file is gone or its id changed): tractors" in editor.text
    logged = [r.getMessage() for r in caplog.records if "knowledge reloaded" in r.getMessage()]
    assert logged == ["knowledge reloaded: 2 entries; added: combines; removed: tractors"]
    editor.say("/reload")                    # nothing changed: nothing added or removed is said
    assert "Entries added" not in editor.text and "Entries removed" not in editor.text
    Conversation(engine, user_id=7, language_hint="pt-br")
    engine.db.set_language(7, "pt")
    (small_kb / "rights" / "combines.yaml").unlink()
    editor.say("/reload")
    assert "Entradas removidas" in editor.text and "combines" in editor.text


# -- /grant with a number that is not one ----------------------------------------------------------

@pytest.mark.parametrize("person", ["²", "٣٤٥", "99999999999999999999999", "-99999999999999999999999", "12x"])
def test_grant_with_an_impossible_id_gets_a_clear_reply(small_kb, tmp_path, caplog, person):
    engine = small_engine(small_kb, Database(tmp_path / "bot.sqlite3"), admin_ids=frozenset({7}))
    admin = Conversation(engine, user_id=7)
    with caplog.at_level("DEBUG"):
        for command in ("grant", "revoke"):
            admin.say(f"/{command} {person} editor")
            assert "Write it like this" in admin.text
            assert "user id" in admin.text
    assert engine.db.people_with_roles() == []
    assert not any(r.exc_info for r in caplog.records)
    assert not any(person in r.getMessage() for r in caplog.records)
    admin.say("/grant 5551 editor")                  # a real id still works
    assert "5551 is now editor" in admin.text


@pytest.mark.parametrize("person", ["99999999999999999999999", "²"])
def test_roles_cli_with_an_impossible_id_gets_a_clear_error(tmp_path, person):
    result = main("roles", "grant", person, "editor", env={"BOT_DATABASE": str(tmp_path / "bot.sqlite3")})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "user id" in result.stderr


# -- a knowledge base that fails the check at start -------------------------------------------------

def break_file(path: Path) -> int:
    return add_line(path, "reviewed:", "review_by: 2027-02-30")


def test_a_broken_knowledge_base_at_start_runs_from_the_last_good_version(small_kb, tmp_path):
    env = {"BOT_KNOWLEDGE_DIR": str(small_kb), "BOT_DATABASE": str(tmp_path / "data" / "bot.sqlite3")}
    first = main("chat", env=env, stdin="/menu\n")            # a good start keeps a copy
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "data" / "knowledge-last-good" / "help" / "tractors.yaml").is_file()
    line = break_file(small_kb / "help" / "tractors.yaml")
    again = main("chat", env=env, stdin="what is tractors\n")
    assert again.returncode == 0, again.stderr
    assert "LAST GOOD VERSION" in again.stderr
    assert f"knowledge/help/tractors.yaml:{line}" in again.stderr          # what to fix
    assert "About tractors." in again.stdout                            # answered from the copy
    assert "Traceback" not in again.stderr


def test_a_broken_knowledge_base_with_no_last_good_version_refuses_to_start(small_kb, tmp_path):
    env = {"BOT_KNOWLEDGE_DIR": str(small_kb), "BOT_DATABASE": str(tmp_path / "bot.sqlite3")}
    line = break_file(small_kb / "help" / "tractors.yaml")
    result = main("chat", env=env, stdin="/menu\n")
    assert result.returncode == 2
    assert f"knowledge/help/tractors.yaml:{line}" in result.stderr
    assert "no last good version" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_good_live_reload_becomes_the_last_good_version(small_kb, tmp_path):
    from bot.reloader import reload_knowledge

    engine = small_engine(small_kb, Database(tmp_path / "bot.sqlite3"))
    write_entry(small_kb, entry_data("combines", "combines"))
    assert reload_knowledge(engine, small_kb).ok
    assert (tmp_path / "knowledge-last-good" / "rights" / "combines.yaml").is_file()
    break_file(small_kb / "rights" / "combines.yaml")
    assert not reload_knowledge(engine, small_kb).ok                  # a refused reload keeps the copy
    copy = (tmp_path / "knowledge-last-good" / "rights" / "combines.yaml").read_text(encoding="utf-8")
    assert "2027-02-30" not in copy


# -- the staff report groups near-duplicates only ---------------------------------------------------

def test_a_short_question_is_not_merged_into_a_longer_one_that_contains_its_words(tmp_path, small_kb):
    from bot.reports import group_unanswered, staff_report

    long = "my husband got a letter about deportation and a court date, what do we do now"
    rows = [("d", "en", "none", long), ("d", "en", "none", "a"), ("d", "en", "suggest", "deportation"),
            ("d", "en", "suggest", "Deportation?"), ("d", "pt", "none", "como renovar meu passaporte"),
            ("d", "es", "none", "como renovar mi pasaporte")]
    groups = group_unanswered(rows)
    assert sorted((g.example, g.count) for g in groups) == sorted([
        (long, 1), ("a", 1), ("deportation", 2), ("como renovar meu passaporte", 2)])
    db = Database(tmp_path / "bot.sqlite3")
    for _day, lang, outcome, text in rows:
        db.record_unanswered(text, lang, outcome)
    kb, _ = load_knowledge(small_kb)
    report = staff_report(db, kb, small_kb, days=7)
    assert "     2 x [en] deportation  (suggested only)" in report
    assert f"     1 x [en] {long}  (no answer)" in report


# -- small command-line findings ---------------------------------------------------------------------

def test_kb_reviewed_says_the_languages_are_optional():
    result = main("kb", "reviewed")
    assert result.returncode == 2
    assert "required: entry" in result.stderr and "LANG" not in result.stderr.split("required:")[1]


def test_roles_list_says_when_nobody_has_a_role(tmp_path):
    env = {"BOT_DATABASE": str(tmp_path / "bot.sqlite3")}
    result = main("roles", "list", env=env)
    assert result.returncode == 0
    assert "No one has a staff role yet" in result.stdout and "roles grant" in result.stdout
    assert main("roles", "grant", "77", "editor", env=env).returncode == 0
    assert main("roles", "list", env=env).stdout.splitlines() == ["77\teditor"]


def test_a_duplicate_id_is_reported_against_the_new_copy(small_kb):
    original = small_kb / "rights" / "bananas.yaml"
    copy = small_kb / "about" / "bananas.yaml"      # sorts before rights/: read first
    copy.parent.mkdir()
    copy.write_text(original.read_text(encoding="utf-8"), encoding="utf-8")
    os.utime(original, (1_700_000_000, 1_700_000_000))     # the original is the older file
    kb, issues = load_knowledge(small_kb)
    duplicates = [i for i in issues if "duplicate id" in i.message]
    assert [(i.file, i.entry) for i in duplicates] == [("knowledge/about/bananas.yaml", "bananas")]
    assert "knowledge/rights/bananas.yaml already has this id" in duplicates[0].message
    assert kb.entries["bananas"].file == "knowledge/rights/bananas.yaml"


def test_ask_keeps_no_copy_of_the_knowledge_base(small_kb, tmp_path):
    env = {"BOT_KNOWLEDGE_DIR": str(small_kb), "BOT_DATABASE": str(tmp_path / "bot.sqlite3")}
    assert main("ask", "what is tractors", env=env).returncode == 0
    assert not (tmp_path / "knowledge-last-good").exists()
