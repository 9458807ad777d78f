"""End to end on WhatsApp: `python main.py run` as its own process, as an operator starts it, with
the real knowledge base and a real SQLite file; Meta is the loopback stand-in (signed webhook posts
in, Graph API calls out)."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from auxil.bot_runner import stop_process
from auxil.fake_graph_api import (APP_SECRET, PHONE_NUMBER_ID, TOKEN, VERIFY_TOKEN, FakeGraphAPI,
                                  button_reply, list_reply, media_message, status_update, text_message)

from bot.i18n import translate

ROOT = Path(__file__).resolve().parent.parent
ONLY_WORDS = "I can only read words. Please write your question, or choose a topic."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WhatsAppBot:
    def __init__(self, graph: FakeGraphAPI, tmp: Path, extra_env: dict | None = None):
        self.graph = graph
        self.port = _free_port()
        self.database = tmp / "bot.sqlite3"
        self.log_path = tmp / "bot.stderr.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BOT_", "WHATSAPP_"))}
        env.update({"WHATSAPP_ACCESS_TOKEN": TOKEN, "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
                    "WHATSAPP_APP_SECRET": APP_SECRET, "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
                    "WHATSAPP_API_BASE_URL": graph.base_url, "BOT_HTTP_PORT": str(self.port),
                    "BOT_DATABASE": str(self.database)})
        env.update(extra_env or {})
        self._stderr = open(self.log_path, "w", encoding="utf-8")
        self.process = subprocess.Popen([sys.executable, "main.py", "run"], cwd=ROOT, env=env,
                                        stdout=subprocess.DEVNULL, stderr=self._stderr)
        self.url = f"http://127.0.0.1:{self.port}/whatsapp/webhook"
        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None:
                raise AssertionError("the bot exited:\n" + self.log())
            try:
                with urllib.request.urlopen(self.url + "?hub.mode=subscribe&hub.verify_token="
                                            f"{VERIFY_TOKEN}&hub.challenge=ready", timeout=2) as answer:
                    if answer.read() == b"ready":
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the bot did not start:\n" + self.log())
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def post(self, payload, **kwargs):
        return self.graph.post(self.url, payload, **kwargs)

    def ask(self, wa_id: str, payload: dict, timeout: float = 30.0):
        """Post a signed message and wait for the bot's first answer to it."""
        start = len(self.graph.calls)
        status, _body = self.post(payload)
        assert status == 200
        return self.graph.wait_for(lambda c: c.to == wa_id and c.ok, timeout=timeout, start=start)

    def stop(self) -> int:
        return stop_process(self.process, self._stderr)


@pytest.fixture(scope="module")
def graph():
    with FakeGraphAPI() as server:
        yield server
    assert not server.server_errors, server.server_errors


@pytest.fixture(scope="module")
def bot(graph, tmp_path_factory):
    running = WhatsAppBot(graph, tmp_path_factory.mktemp("whatsapp"))
    yield running
    assert running.stop() == 0, running.log()
    log = running.log()
    for marker in ("Traceback", " ERROR ", " CRITICAL "):
        assert marker not in log, log
    # a WhatsApp id is a phone number: never in a log line
    for call in graph.calls:
        assert call.to not in log
    assert TOKEN not in log and APP_SECRET not in log


def _titles(knowledge, entry, lang):
    return knowledge.kb.entries[entry].text(lang).title


@pytest.mark.parametrize("wa_id, question, lang", [
    ("16175550101", "what do i do if ICE agents knock on my door", "en"),
    ("5511987650001", "o que faço se a imigração bater na minha porta", "pt"),
    ("5215550000001", "qué hago si la migra toca mi puerta", "es"),
    ("50937000001", "kisa pou m fè si imigrasyon frape pòt lakay mwen", "ht"),
])
def test_a_question_in_each_language_is_answered_in_it_with_whatsapp_marks(bot, graph, knowledge, wa_id,
                                                                          question, lang):
    answer = bot.ask(wa_id, text_message(wa_id, question))
    title = _titles(knowledge, "ice-at-home", lang)
    assert f"*{title}*" in answer.text.split("\n\n")[:2]   # after the urgent line, when there is one
    assert "<b>" not in answer.text and "</a>" not in answer.text
    assert graph.reads, "incoming messages are marked as read"


def test_country_code_is_only_a_hint_what_the_person_writes_wins(bot, knowledge):
    wa_id = "5511987650002"   # +55 (Brazil), writing in English
    answer = bot.ask(wa_id, text_message(wa_id, "what do i do if ICE agents knock on my door"))
    assert "*" + _titles(knowledge, "ice-at-home", "en") + "*" in answer.text.split("\n\n")[:2]


def test_a_reply_button_is_pressed(bot, graph):
    wa_id = "16175550102"
    thanks = bot.ask(wa_id, text_message(wa_id, "thank you"))
    assert thanks.payload["interactive"]["type"] == "button"
    menu_button = thanks.choices[0]
    assert "Menu" in menu_button["title"]
    menu = bot.ask(wa_id, button_reply(wa_id, menu_button["id"], menu_button["title"]))
    assert menu.payload["interactive"]["type"] == "list"   # five topics: more than 3 buttons
    assert "Know your rights" in [row["title"] for row in menu.choices]


def test_a_list_reply_navigates_to_an_answer(bot, graph, knowledge):
    wa_id = "16175550103"
    menu = bot.ask(wa_id, text_message(wa_id, "/menu"))
    rights = next(r for r in menu.choices if r["title"] == "Know your rights")
    start = len(graph.calls)
    bot.post(list_reply(wa_id, rights["id"], rights["title"]))
    graph.wait_quiet(1.0)
    pages = [c for c in graph.calls[start:] if c.to == wa_id]
    assert pages and all(c.ok for c in pages)
    rows = [r for c in pages for r in c.choices]
    assert all(len(c.choices) <= 10 for c in pages)
    # every entry (the running bot's knowledge base, read from disk) and « Back, over the pages
    assert len(pages) == -(-len(rows) // 10) and len(rows) >= len(knowledge.kb.in_category("rights")) + 1
    assert len({r["id"] for r in rows}) == len(rows) and rows[-1]["title"] == "« Back"
    warrant = next(r for r in rows if "warrant" in (r.get("description") or r["title"]).lower())
    answer = bot.ask(wa_id, list_reply(wa_id, warrant["id"], warrant["title"]))
    assert answer.text.startswith("*")


def test_a_voice_note_gets_i_can_only_read_words(bot, knowledge):
    wa_id = "5511987650003"
    answer = bot.ask(wa_id, media_message(wa_id, "voice"))
    # in Portuguese, from +55: nothing was written to detect a language from
    assert answer.text == translate("pt", ONLY_WORDS)
    for kind in ("image", "sticker", "location", "contacts", "reaction"):
        other = bot.ask("16175550104", media_message("16175550104", kind))
        assert other.text == translate("en", ONLY_WORDS)


def test_forged_missing_and_wrong_signatures_are_refused_and_nothing_is_answered(bot, graph):
    wa_id = "16175550105"
    payload = text_message(wa_id, "what do i do if ICE agents knock on my door")
    start = len(graph.calls)
    assert bot.post(payload, signature=None)[0] == 401
    assert bot.post(payload, signature="sha256=" + "0" * 64)[0] == 403
    forged = FakeGraphAPI(app_secret="not-the-app-secret")
    assert bot.post(payload, signature=forged.sign(b'{"entry": []}'))[0] == 403
    assert bot.post(b"not json", signature=graph.sign(b"not json"))[0] == 400
    graph.wait_quiet(0.5)
    assert [c for c in graph.calls[start:] if c.to == wa_id] == []
    log = bot.log()
    assert "refused a WhatsApp webhook post: wrong signature" in log
    assert "knock" not in log
    # the same message, signed, is answered: nothing was lost
    assert bot.ask(wa_id, payload).ok


def test_a_replayed_message_id_is_answered_once(bot, graph):
    wa_id = "16175550106"
    payload = text_message(wa_id, "thank you")
    start = len(graph.calls)
    assert bot.post(payload)[0] == 200
    assert bot.post(payload)[0] == 200   # Meta's retry: same message id
    graph.wait_quiet(1.0)
    assert len([c for c in graph.calls[start:] if c.to == wa_id]) == 1
    assert "was not answered twice" in bot.log()


def test_statuses_are_accepted_and_answer_nothing(bot, graph):
    start = len(graph.calls)
    assert bot.post(status_update("16175550107"))[0] == 200
    graph.wait_quiet(0.5)
    assert graph.calls[start:] == []


def test_a_provider_error_is_survived(bot, graph):
    wa_id = "16175550108"
    graph.fail_next(131000, status=500)   # a temporary error: retried
    answer = bot.ask(wa_id, text_message(wa_id, "thank you"))
    assert answer.ok
    graph.fail_next(131026)               # undeliverable: dropped, the bot keeps answering
    start = len(graph.calls)
    assert bot.post(text_message(wa_id, "thank you"))[0] == 200
    graph.wait_quiet(1.0)
    assert [c.status for c in graph.calls[start:] if c.to == wa_id] == [400]
    assert bot.ask(wa_id, text_message(wa_id, "thank you")).ok


def test_forget_deletes_the_phone_number(bot, graph):
    wa_id = "5511987650009"
    bot.ask(wa_id, text_message(wa_id, "/language"))
    conn = sqlite3.connect(bot.database)
    try:
        assert conn.execute("SELECT COUNT(*) FROM people WHERE address = ?", (wa_id,)).fetchone()[0] == 1
    finally:
        conn.close()
    confirm = bot.ask(wa_id, text_message(wa_id, "/forget"))
    yes = confirm.choices[0]
    done = bot.ask(wa_id, list_reply(wa_id, yes["id"], yes["title"])
                   if confirm.payload["interactive"]["type"] == "list" else button_reply(wa_id, yes["id"]))
    assert "WhatsApp" in done.text
    conn = sqlite3.connect(bot.database)
    try:
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    assert wa_id not in dump


def test_subscribe_on_whatsapp_offers_the_topics_and_saves_the_choice(bot, graph):
    wa_id = "16175550110"
    answer = bot.ask(wa_id, text_message(wa_id, "/subscribe"))
    assert "Telegram" not in answer.text
    alerts = next(c for c in answer.choices if c["id"].startswith("s:on:alerts"))
    saved = bot.ask(wa_id, button_reply(wa_id, alerts["id"], alerts["title"])
                    if answer.payload["interactive"]["type"] == "button" else list_reply(wa_id, alerts["id"]))
    assert "✅" in saved.text
    conn = sqlite3.connect(bot.database)
    try:
        assert conn.execute("SELECT topics, active FROM subscriptions s JOIN people p ON p.chat_id = s.chat_id "
                            "WHERE p.address = ?", (wa_id,)).fetchall() == [("alerts", 1)]
    finally:
        conn.close()


def test_webhook_verification(bot):
    with urllib.request.urlopen(bot.url + f"?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}"
                                "&hub.challenge=1158201444", timeout=5) as answer:
        assert answer.read() == b"1158201444"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bot.url + "?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
                               timeout=5)
    assert refused.value.code == 403


def test_run_with_no_channel_explains_how_to_configure_each(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BOT_", "WHATSAPP_"))}
    env["BOT_DATABASE"] = str(tmp_path / "bot.sqlite3")
    result = subprocess.run([sys.executable, "main.py", "run"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    for setting in ("TELEGRAM_BOT_TOKEN", "WHATSAPP_ACCESS_TOKEN", "WHATSAPP_PHONE_NUMBER_ID",
                    "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "/whatsapp/webhook"):
        assert setting in result.stderr
    assert len(result.stderr.splitlines()) <= 25   # one screen
