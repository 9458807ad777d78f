"""Privacy hardening (issue 14): votes, masking, what the database file keeps, its permissions and
its health, with the real SQLite file and the real knowledge base."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from auxil.cli import run_main
from auxil.transcript import Conversation

from bot.engine import Engine
from bot.reports import staff_report

ROOT = Path(__file__).resolve().parent.parent


main = run_main


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


# -- masking what staff read: names, street addresses, dates (and phones, emails, A-numbers) -------

from bot.masking import mask_personal_data  # noqa: E402

MASKED = [
    # English
    ("my name is Maria Silva and ICE took my husband", "my name is [name] and ICE took my husband"),
    ("hi my name's john, can they deport me", "hi my name's [name], can they deport me"),
    ("My son's name is Kevin. Can the school tell ICE?", "My son's name is [name]. Can the school tell ICE?"),
    ("ICE came to 45 Washington St apt 3 in Chelsea", "ICE came to [address] in Chelsea"),
    ("they wait outside 88 Blue Hill Ave every morning", "they wait outside [address] every morning"),
    ("I was born on 03/12/1985 in Guatemala", "I was born on [date] in Guatemala"),
    ("born March 3, 1985, do I qualify", "born [date], do I qualify"),
    ("my hearing is 2027-01-15 at the court", "my hearing is [date] at the court"),
    ("call 617-555-0199 or maria.s@example.com, A# 123 456 789",
     "call [phone] or [email], [A-number]"),
    # Português
    ("meu nome é Ana Souza e tenho medo de ir no tribunal", "meu nome é [name] e tenho medo de ir no tribunal"),
    ("Me chamo Paulo. Moro na Rua das Flores 120, Framingham",
     "Me chamo [name]. Moro na [address], Framingham"),
    ("nasci em 12 de março de 1990, posso pedir o TPS?", "nasci em [date], posso pedir o TPS?"),
    ("o nome dele é Carlos Alberto da Silva e ele foi preso", "o nome dele é [name] e ele foi preso"),
    # Español
    ("me llamo José Pérez, tengo miedo", "me llamo [name], tengo miedo"),
    ("Mi nombre es Rosa y vivo en 12 Main Street, Lynn", "Mi nombre es [name] y vivo en [address], Lynn"),
    ("nací el 5 de mayo de 1988 en Honduras", "nací el [date] en Honduras"),
    ("vivo en la Calle Broadway 230 con mis hijos", "vivo en la [address] con mis hijos"),
    # Kreyòl ayisyen
    ("mwen rele Jean Baptiste, mwen bezwen èd", "mwen rele [name], mwen bezwen èd"),
    ("non mwen se Marie Joseph epi ICE vin lakay mwen", "non mwen se [name] epi ICE vin lakay mwen"),
    ("mwen fèt 12 mas 1985 ann Ayiti", "mwen fèt [date] ann Ayiti"),
    ("mwen rete 30 Geneva Ave Dorchester", "mwen rete [address] Dorchester"),
]


@pytest.mark.parametrize("raw, masked", MASKED)
def test_names_addresses_and_dates_are_masked(raw, masked):
    assert mask_personal_data(raw) == masked


@pytest.mark.parametrize("raw", [
    "ICE na porta dia 12",                         # a day alone is not a date of birth
    "what is my name worth to ICE",                # no name given
    "can I call 911 if ICE is at my door",
    "how do I get a red card in May",              # a month alone
    "kisa m fè si ICE vin lakay mwen",
    "I-9 form at work, 3 questions",
    "I have 2 days before court, what do I bring",
    "ki moun pou m rele lè ICE vini",               # "who do I call": rele is also "to call"
    "Mwen rele prizon Plymouth twa fwa",             # "I called the prison"
    "mi esposo me llamo ayer desde detencion",       # "my husband called me"
    "en mi calle se han llevado a 3 vecinos este mes",
    "o que mudou em janeiro de 2025",                # a month and year: when, not who
])
def test_ordinary_questions_are_kept_as_written(raw):
    assert mask_personal_data(raw) == raw


def test_unanswered_questions_are_stored_masked(engine):
    chat = Conversation(engine, user_id=880011)
    chat.say("my name is Maria Silva, I live at 45 Washington St, born 03/12/1985: pizza recipe?")
    with sqlite3.connect(engine.db.path) as conn:
        texts = [r[0] for r in conn.execute("SELECT text FROM unanswered")]
    assert texts == ["my name is [name], I live at [address], born [date]: pizza recipe?"]


# -- what the welcome and /privacy say is what the bot does ----------------------------------------

HIDDEN = {"en": ("names", "addresses", "dates"), "pt": ("nomes", "endereços", "datas"),
          "es": ("nombres", "direcciones", "fechas"), "ht": ("non moun", "adrès", "dat")}
VOTE = {"en": "vote", "pt": "voto", "es": "voto", "ht": "vòt"}
NOT_HIDDEN = ("not hidden", "não são escondidos", "no se ocultan", "pa kache", "are *not* detected")


@pytest.mark.parametrize("lang", ["en", "pt", "es", "ht"])
def test_the_welcome_and_privacy_say_exactly_what_is_kept_and_hidden(engine, real_kb, lang):
    engine.db.set_language(990000, lang)
    welcome = Conversation(engine, user_id=990000).say("/start").replies[0].text
    privacy = real_kb.entries["privacy"].text(lang).answer
    for text in (welcome, privacy):
        assert all(word in text for word in HIDDEN[lang]), (lang, text)
        assert not any(phrase in text for phrase in NOT_HIDDEN), (lang, text)
    assert VOTE[lang] in privacy          # the vote is kept (one per answer) until /forget
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "are *not* detected" not in readme and "with no record of who voted" not in readme


# -- the database file: nothing left after /forget, owner-only, and its health ---------------------

from bot.storage import Database, StorageError  # noqa: E402

PERSON = 4_242_424_242   # an id whose bytes are easy to find


def _varint(value: int) -> bytes:
    """SQLite's variable-length integer (how a rowid is written in a cell)."""
    if value > 0x00FFFFFFFFFFFFFF:
        return bytes(_varint(value >> 8)[:-1]) + bytes([value & 0xFF])  # not needed for our ids
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def traces_of(person: int, path: Path) -> dict[str, int]:
    """How often the person's id appears in the database file and its -wal and -shm, in every
    form SQLite writes an integer (6- and 8-byte big-endian, varint) or as text."""
    forms = [person.to_bytes(6, "big"), person.to_bytes(8, "big"), _varint(person), str(person).encode()]
    found = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        file = Path(str(path) + suffix)
        if file.exists():
            data = file.read_bytes()
            count = sum(data.count(form) for form in forms)
            if count:
                found[file.name] = count
    return found


def busy_person(db: Database, person: int = PERSON) -> None:
    """Everything a person can leave in the database, many times over (each write is a WAL frame)."""
    db.touch_user(person)
    db.set_language(person, "pt")
    for k in range(200):
        db.remember_message(person, 1000 + k)
        db.touch_user(person)
        db.record_feedback("ice-at-home", "pt", k % 2 == 0, chat_id=person)
    db.set_subscription(person, {"alerts", "news"}, "pt")
    db.grant(person, "editor")
    db.person("telegram", person)


def test_after_forget_no_file_keeps_the_persons_id_while_running_and_after_stopping(tmp_path):
    path = tmp_path / "bot.sqlite3"
    db = Database(path)
    db.touch_user(77)                     # someone else stays
    busy_person(db)
    assert traces_of(PERSON, path)        # it is there before (the test can see it)
    db.forget_user(PERSON)
    assert traces_of(PERSON, path) == {}  # while running: the WAL no longer holds old copies
    db.touch_user(78)
    db.close()
    assert traces_of(PERSON, path) == {}  # and after a clean stop
    assert not Path(str(path) + "-wal").exists()
    assert Database(path).get_user(77) is not None


def test_a_process_that_exits_without_closing_the_database_leaves_no_trace(tmp_path):
    path = tmp_path / "bot.sqlite3"
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
              "from bot.storage import Database\n"
              f"db = Database({str(path)!r})\n"
              f"db.touch_user({PERSON}); db.set_subscription({PERSON}, {{'alerts'}}, 'en')\n"
              f"db.forget_user({PERSON})\n"
              "db.touch_user(5)\n"
              "import threading, time\n"   # a worker thread still holds it, as the bot's do
              "threading.Thread(target=lambda db=db: time.sleep(60), daemon=True).start()\n")
    # ... and the process exits: no close()
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert traces_of(PERSON, path) == {}
    assert not Path(str(path) + "-wal").exists()     # closed on exit: the WAL was folded in


def test_an_existing_database_readable_by_others_becomes_owner_only(tmp_path):
    path = tmp_path / "bot.sqlite3"
    Database(path).close()
    os.chmod(path, 0o644)
    old = os.umask(0o022)
    try:
        db = Database(path)
        db.touch_user(1)
        modes = {p.name: oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir() if p.name.startswith("bot.")}
    finally:
        os.umask(old)
    assert modes == {"bot.sqlite3": "0o600", "bot.sqlite3-wal": "0o600", "bot.sqlite3-shm": "0o600"}
    db.close()


@pytest.fixture
def read_only(tmp_path):
    """Make a file read-only for the account running the tests (root ignores file modes, so
    then the file is made immutable with chattr)."""
    made = []

    def make(path: Path):
        if os.geteuid() != 0:
            os.chmod(path, 0o444)
        elif subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("running as root where chattr +i is not allowed: cannot make a read-only file")
        made.append(path)

    yield make
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        os.chmod(path, 0o600)


@pytest.mark.parametrize("command", [["chat"], ["roles", "list"]])
def test_a_read_only_database_stops_the_start_with_a_clear_message(tmp_path, read_only, command):
    path = tmp_path / "bot.sqlite3"
    Database(path).close()
    read_only(path)
    result = main(*command, env={"BOT_DATABASE": str(path)}, stdin="hello\n")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "read-only" in result.stderr and str(path) in result.stderr
    assert "write access" in result.stderr


def test_a_database_deleted_while_running_is_noticed_loudly_and_one_file_is_used_again(tmp_path, caplog):
    path = tmp_path / "bot.sqlite3"
    db = Database(path)
    db.touch_user(1)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    # a command run meanwhile (roles grant) creates a database at the same path
    granted = main("roles", "grant", "5551", "editor", env={"BOT_DATABASE": str(path)})
    assert granted.returncode == 0, granted.stderr
    with caplog.at_level("WARNING", logger="bot.storage"):
        db.touch_user(2)
    loud = [r for r in caplog.records if r.levelname == "CRITICAL"]
    assert len(loud) == 1 and "was deleted or replaced" in loud[0].getMessage().lower()
    assert str(path) in loud[0].getMessage()
    assert db.roles_of(5551) == {"editor"}            # the bot and the command share one file now
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM users WHERE chat_id = 2").fetchone()[0] == 1
    db.close()


def test_a_database_replaced_while_running_is_noticed_and_the_new_file_used(tmp_path, caplog):
    path, other = tmp_path / "bot.sqlite3", tmp_path / "restored.sqlite3"
    db = Database(path)
    db.touch_user(1)
    backup = Database(other)
    backup.grant(9001, "admin")
    backup.close()
    os.replace(other, path)
    with caplog.at_level("WARNING", logger="bot.storage"):
        db.touch_user(3)
    assert [r.levelname for r in caplog.records].count("CRITICAL") == 1
    assert db.roles_of(9001) == {"admin"}
    db.close()
