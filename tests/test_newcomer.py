"""What a newcomer ran into (issue 14): the terminal chat, `ask` against `chat`, the README's
examples and figures, plural forms, the menus."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from auxil.cli import run_main

from bot.storage import Database

ROOT = Path(__file__).resolve().parent.parent


main = run_main


ANNOUNCEMENT = """topic: {topic}
text:
  en: |
    <b>Know your rights workshop</b> on Saturday at 2 pm.
"""


@pytest.mark.parametrize("subscribers, expected", [(1, "(1 subscriber)"), (2, "(2 subscribers)"),
                                                   (0, "(0 subscribers)")])
def test_counts_of_subscribers_use_plural_forms(tmp_path, subscribers, expected):
    db = Database(tmp_path / "bot.sqlite3")
    for k in range(subscribers):
        db.set_subscription(100 + k, {"news"}, "en")
    db.close()
    (tmp_path / "a.yaml").write_text(ANNOUNCEMENT.format(topic="news"), encoding="utf-8")
    result = main("broadcast", "send", str(tmp_path / "a.yaml"), "--dry-run",
                  env={"BOT_DATABASE": str(tmp_path / "bot.sqlite3")})
    assert result.returncode == 0, result.stderr
    assert f"Topic: news {expected}" in result.stdout


def test_plural_forms_exist_in_every_catalog():
    from bot.i18n import ngettext, use_language

    expected = {"en": ("1 subscriber", "2 subscribers"), "pt": ("1 inscrito", "2 inscritos"),
                "es": ("1 suscriptor", "2 suscriptores"), "ht": ("1 abone", "2 abone")}
    for lang, (one, two) in expected.items():
        with use_language(lang):
            assert ngettext("{n} subscriber", "{n} subscribers", 1) == one
            assert ngettext("{n} subscriber", "{n} subscribers", 2) == two


@pytest.mark.parametrize("lang", ["en", "pt", "es", "ht"])
def test_no_menu_lists_an_entry_with_its_own_name(engine, lang):
    from auxil.transcript import Conversation

    chat = Conversation(engine, user_id=31_000)
    engine.db.set_language(31_000, lang)
    chat.say("/menu")
    for category in [b for b in chat.buttons() if b.data.startswith("c:")]:
        chat.press_data(category.data)
        listed = [b.label for b in chat.buttons() if b.data.startswith("a:")]
        assert category.label not in listed, (lang, category.label, listed)
        chat.say("/menu")


@pytest.mark.parametrize("lang", ["en", "pt", "es", "ht"])
def test_the_stop_word_each_footer_gives_stops_and_the_readme_lists_it(engine, lang):
    import re

    from auxil.transcript import Conversation

    from bot.features.broadcasts.content import FOOTER
    from bot.features.subscriptions import STOP_WORDS
    from bot.i18n import translate
    from bot.text import normalize

    said = {w for text in (translate(lang, FOOTER), translate(lang, "To stop them all, send /unsubscribe or write STOP."))
            for w in re.findall(r"\b[A-ZÀ-Ý]{4,}\b", text)}
    assert said, translate(lang, FOOTER)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = readme[readme.index("just a stop word stops everything:"):readme.index("(whole messages only")]
    groups = [g.lower() for g in " ".join(listed.split()).split(":", 1)[1].split(";")]
    for word in said:
        assert lang in STOP_WORDS.get(normalize(word), ()), (lang, word)
        person = 41_000 + len(word)
        engine.db.set_language(person, lang)
        engine.db.set_subscription(person, {"alerts"}, lang)
        Conversation(engine, user_id=person).say(word)
        assert engine.db.subscription(person) is None, (lang, word)
        group = groups[["en", "pt", "es", "ht"].index(lang)] if word != "STOP" else groups[0]
        assert f'"{word.lower()}"' in group, (lang, word, group)


def test_the_readmes_announcement_example_works_as_written(tmp_path):
    import yaml

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("```yaml", readme.index("**From a file.**")) + len("```yaml")
    example = readme[start:readme.index("```", start)]
    (tmp_path / "announcement.yaml").write_text(example, encoding="utf-8")
    data = yaml.safe_load(example)
    assert data["topic"] == "news"             # a workshop is campaign news, not an urgent alert
    result = main("broadcast", "send", str(tmp_path / "announcement.yaml"), "--dry-run",
                  env={"BOT_DATABASE": str(tmp_path / "bot.sqlite3")})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Know your rights workshop" in result.stdout


# -- the terminal chat --------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    """One trained model for every chat started here (it is cached beside the database)."""
    return tmp_path_factory.mktemp("shared") / "model-cache"


@pytest.fixture
def chat_env(tmp_path, model_cache):
    model_cache.mkdir(exist_ok=True)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "model-cache").symlink_to(model_cache)
    return {"BOT_DATABASE": str(tmp_path / "data" / "bot.sqlite3")}


def test_the_chat_keeps_a_session_language_and_numbers_out_of_range_are_not_questions(chat_env):
    result = main("chat", env=chat_env, stdin="os federais estão batendo na minha porta, o que eu faço?\n"
                                              "/start\n99\n0\n")
    assert result.returncode == 0, result.stderr
    after_start = result.stdout.split("> /start", 1)[1]
    assert after_start.lstrip().startswith("Olá!"), after_start[:200]       # the session's language
    for number in ("99", "0"):
        reply = result.stdout.split(f"> {number}\n", 1)[1].split("\n> ", 1)[0]
        assert f"Não existe a opção {number}" in reply, reply
    with __import__("sqlite3").connect(chat_env["BOT_DATABASE"]) as conn:   # not kept as questions
        assert conn.execute("SELECT COUNT(*) FROM unanswered WHERE text IN ('99', '0')").fetchone()[0] == 0


def _pty_chat(env, keys: list[bytes], timeout=120):
    """Run `python main.py chat` on a pseudo-terminal, typing `keys` one prompt at a time."""
    import pty
    import select
    import time

    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BOT_"))}
    environment.update(env, TERM="xterm")
    pid, fd = pty.fork()
    if pid == 0:   # the child: the chat on the terminal
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "main.py", "chat"], environment)
    out, deadline = b"", time.monotonic() + timeout

    def read_until(marker: bytes, start: int) -> bool:
        nonlocal out
        while time.monotonic() < deadline:
            if out.find(marker, start) >= 0:
                return True
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    return False
                if not chunk:
                    return False
                out += chunk
        return False

    for key in keys:
        assert read_until(b"> ", len(out) - 2 if out else 0), out.decode(errors="replace")[-500:]
        mark = len(out)
        os.write(fd, key)
        read_until(b"> ", mark)
    finished, status = 0, 0
    while time.monotonic() < deadline:            # the rest, until the chat ends
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            out += chunk
            if chunk:
                continue
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            break
    if not finished:
        os.kill(pid, 9)
        _pid, status = os.waitpid(pid, 0)
    os.close(fd)
    return out.decode("utf-8", errors="replace"), os.waitstatus_to_exitcode(status)


def test_the_terminal_chat_has_line_editing_and_history(chat_env):
    out, code = _pty_chat(chat_env, [b"/help\r", b"\x1b[A\r", b"exit\r"])
    assert code == 0, out
    assert "^[[A" not in out and "[A" not in out
    assert out.count("/menu — Browse topics") == 2, out          # the up arrow sent /help again
    assert "quit" in out and "exit" in out                        # it says how to leave


def test_ctrl_c_leaves_without_a_traceback(chat_env):
    out, code = _pty_chat(chat_env, [b"\x03"])
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert code in (0, 130)


def test_ctrl_d_leaves_on_a_new_line(chat_env):
    out, code = _pty_chat(chat_env, [b"\x04"])
    assert code == 0, out
    assert "Traceback" not in out
    assert out.rstrip(" ").endswith("\n"), repr(out[-80:])       # the shell's prompt starts a line


# -- ask says what chat would ------------------------------------------------------------------------

LINES = ["/help", "stop", "/forget", "what do I do if ICE agents knock on my door", "Português"]


def test_ask_answers_stop_words_language_names_and_commands_as_chat_does(chat_env):
    import json

    asked = main("ask", "--json", env=chat_env, stdin="\n".join(LINES) + "\n")
    assert asked.returncode == 0, asked.stderr
    rows = [json.loads(line) for line in asked.stdout.splitlines()]
    chatted = main("chat", env=chat_env, stdin="\n".join(LINES) + "\n")
    assert chatted.returncode == 0, chatted.stderr
    replies = chatted.stdout.split("\n> ")[1:]                 # one per line typed, in order
    assert len(rows) == len(replies) == len(LINES)
    for row, reply in zip(rows, replies):
        first_line = row["answer"].strip().splitlines()[0]
        assert first_line in reply, (row["question"], first_line, reply[:300])
    assert "You don't get any announcements" in rows[1]["answer"]      # a stop word, not a question
    assert rows[2]["answer"].startswith("This deletes everything")     # /forget asks first
    assert rows[3]["entry"] == "ice-at-home"
    assert rows[4]["lang"] == "pt" and "português" in rows[4]["answer"]
    text = main("ask", "stop", env=chat_env).stdout
    assert "[en] stop word" in text


def test_the_readme_says_which_tests_need_the_shared_facts_and_why_they_skip():
    import re

    source = (ROOT / "tests" / "test_knowledge_content.py").read_text(encoding="utf-8")
    needing = re.findall(r"@needs_shared\s*\ndef (\w+)", source)
    assert needing
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("Install the test tools"):readme.index("## Using it")]
    assert "../shared/facts.md" in section and "skip" in section
    for name in needing:
        assert name in section, name
