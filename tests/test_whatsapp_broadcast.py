"""Announcements on WhatsApp, end to end: `python main.py run` (WhatsApp) for people subscribing
through real signed webhook posts, then `python main.py broadcast send` as its own process to
subscribers on Telegram and WhatsApp at once, against both stand-ins (the Bot API and the Graph
API, which refuses free-form messages outside the 24-hour window), and a kill -9 mid-broadcast."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from auxil.fake_graph_api import (APP_SECRET, PHONE_NUMBER_ID, TOKEN, VERIFY_TOKEN, FakeGraphAPI,
                                  button_reply, list_reply, status_update, text_message)
from test_whatsapp_e2e import WhatsAppBot

from bot.storage import Database

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = "en=kyr_alert:en_US,pt=kyr_alerta:pt_BR"   # no Spanish or Kreyòl template: English


@pytest.fixture
def graph():
    with FakeGraphAPI() as server:
        yield server
    assert not server.server_errors, server.server_errors


def whatsapp_env(graph, database, **extra) -> dict:
    env = {"WHATSAPP_ACCESS_TOKEN": TOKEN, "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
           "WHATSAPP_APP_SECRET": APP_SECRET, "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
           "WHATSAPP_API_BASE_URL": graph.base_url, "BOT_DATABASE": str(database),
           "WHATSAPP_TEMPLATES": TEMPLATES}
    env.update(extra)
    return env


def cli(args, env, timeout=180, **kwargs):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BOT_", "WHATSAPP_"))}
    environment.update(env)
    return subprocess.Popen([sys.executable, "main.py", *args], cwd=ROOT, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def run(args, env, timeout=180):
    process = cli(args, env)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def announcement(path: Path, body: str) -> Path:
    path.write_text(f"topic: alerts\ntext:\n  en: \"<b>{body}</b> (en)\"\n  pt: \"{body} (pt)\"\n"
                    f"  es: \"{body} (es)\"\n  ht: \"{body} (ht)\"\n", encoding="utf-8")
    return path


def whatsapp_subscriber(db: Database, wa_id: str, lang: str, days_ago: float = 3) -> int:
    """Someone who subscribed on WhatsApp and last wrote `days_ago` (outside the 24-hour window)."""
    person = db.person("whatsapp", wa_id)
    db.touch_user(person)
    db.set_subscription(person, ["alerts"], lang)
    when = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days_ago)).replace(microsecond=0)
    with sqlite3.connect(db.path) as conn:   # as storage writes it
        conn.execute("UPDATE users SET last_seen = ? WHERE chat_id = ?", (when.isoformat(), person))
    return person


def subscribe_through_the_bot(bot: WhatsAppBot, wa_id: str, language: str) -> None:
    """/language, then /subscribe and the alerts button, as a person does (real signed posts)."""
    picker = bot.ask(wa_id, text_message(wa_id, "/language"))
    choice = next(c for c in picker.choices if c["id"].startswith(f"l:{language}"))
    bot.ask(wa_id, list_reply(wa_id, choice["id"]) if picker.payload["interactive"]["type"] == "list"
            else button_reply(wa_id, choice["id"]))
    menu = bot.ask(wa_id, text_message(wa_id, "/subscribe"))
    alerts = next(c for c in menu.choices if c["id"].startswith("s:on:alerts"))
    bot.ask(wa_id, button_reply(wa_id, alerts["id"]) if menu.payload["interactive"]["type"] == "button"
            else list_reply(wa_id, alerts["id"]))


def test_one_announcement_to_telegram_and_whatsapp_inside_and_outside_the_window(api, graph, tmp_path):
    database = tmp_path / "bot.sqlite3"
    inside = {"5511987650101": "pt", "16175550102": "en"}   # they write now: free-form messages
    bot = WhatsAppBot(graph, tmp_path, extra_env={"WHATSAPP_TEMPLATES": TEMPLATES})
    try:
        for wa_id, lang in inside.items():
            subscribe_through_the_bot(bot, wa_id, lang)
    finally:
        assert bot.stop() == 0, bot.log()
    db = Database(bot.database)
    outside = {"5511987650201": "pt", "5215550000202": "es", "50937000203": "ht", "16175550204": "en"}
    for wa_id, lang in outside.items():
        whatsapp_subscriber(db, wa_id, lang)
    closed = "16175550205"   # the bot saw them write 20 hours ago, but Meta's window has closed
    whatsapp_subscriber(db, closed, "en", days_ago=20 / 24)
    outside[closed] = "en"
    for chat, lang in {7001: "en", 7002: "ht"}.items():      # Telegram subscribers
        db.touch_user(chat)
        db.set_subscription(chat, ["alerts"], lang)
    db.close()
    env = whatsapp_env(graph, bot.database, TELEGRAM_BOT_TOKEN=api.token, TELEGRAM_API_BASE_URL=api.base_url)
    file = announcement(tmp_path / "a.yaml", "Raid reported near the station")

    code, out, err = run(["broadcast", "send", str(file), "--dry-run"], env)
    assert code == 0, err
    assert "Português             2  own text  (Telegram 0, WhatsApp 2)" in out
    assert "Kreyòl ayisyen        2  own text  (Telegram 1, WhatsApp 1)" in out
    assert "English               4  own text  (Telegram 1, WhatsApp 3)" in out
    assert "No template for Español, Kreyòl ayisyen: they get the English template." in out

    graph.fail_next(130429)          # the number's throughput: the lane waits and retries
    graph.fail_next(131056)          # pair rate limit: that person is retried later
    start = len(graph.calls)
    code, out, err = run(["broadcast", "send", str(file), "--yes"], env)
    assert code == 0, err
    assert "Announcement #1 (alerts): done" in out, out + err
    calls = [c for c in graph.calls[start:] if c.ok]
    got = Counter(c.to for c in calls)
    assert got == Counter(list(inside) + list(outside))                 # everyone once, exactly
    by_person = {c.to: c.payload for c in calls}
    for wa_id, lang in inside.items():                                  # free-form inside the window
        assert by_person[wa_id]["type"] == "text"
        body = by_person[wa_id]["text"]["body"]
        assert "Raid reported near the station" in body and f"({lang})" in body
    assert "*Raid reported near the station*" in by_person["16175550102"]["text"]["body"]   # WhatsApp marks
    expected = {"pt": ("kyr_alerta", "pt_BR"), "es": ("kyr_alert", "en_US"), "ht": ("kyr_alert", "en_US"),
                "en": ("kyr_alert", "en_US")}
    for wa_id, lang in outside.items():                                 # templates outside it
        template = by_person[wa_id]["template"]
        assert (template["name"], template["language"]["code"]) == expected[lang]
        parameter = template["components"][0]["parameters"][0]["text"]
        assert "Raid reported near the station" in parameter and f"({lang})" in parameter and "\n" not in parameter
    reengage = [c.to for c in graph.calls[start:] if not c.ok and c.answer["error"]["code"] == 131047]
    assert reengage == [closed]                                         # then sent as the template
    telegram = Counter(c.params["chat_id"] for c in api.requests("sendMessage")
                       if c.ok and "Raid reported" in c.params.get("text", ""))
    assert telegram == Counter({7001: 1, 7002: 1})
    with sqlite3.connect(bot.database) as conn:
        assert dict(conn.execute("SELECT state, COUNT(*) FROM broadcast_recipients GROUP BY state")) == {"sent": 9}
    for wa_id in (*inside, *outside):                                    # a phone number is never shown
        assert wa_id not in out and wa_id not in err

    # WhatsApp reports later that one announcement could not be delivered: its record says so
    failed_id = next(c.answer["messages"][0]["id"] for c in calls if c.to == "5215550000202")
    later = status_update("5215550000202", failed_id, "failed")
    later["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"] = [{"code": 131026}]
    bot = WhatsAppBot(graph, tmp_path, extra_env={"WHATSAPP_TEMPLATES": TEMPLATES})
    try:
        assert bot.post(later)[0] == 200
        deadline = time.monotonic() + 10
        while True:
            with sqlite3.connect(bot.database) as conn:
                states = dict(conn.execute("SELECT state || ':' || COALESCE(error, ''), COUNT(*) FROM "
                                           "broadcast_recipients GROUP BY 1"))
            if states.get("failed:undeliverable") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert states == {"sent:": 8, "failed:undeliverable": 1}
    finally:
        assert bot.stop() == 0, bot.log()
    assert "5215550000202" not in bot.log()


def test_kill_9_mid_whatsapp_broadcast_then_resume_no_duplicate_no_silent_miss(graph, tmp_path):
    database = tmp_path / "bot.sqlite3"
    db = Database(database)
    people = {f"55119876{5000 + i:05d}": ("pt", "en", "es", "ht")[i % 4] for i in range(60)}
    for wa_id, lang in people.items():
        whatsapp_subscriber(db, wa_id, lang)
    db.close()
    env = whatsapp_env(graph, database, WHATSAPP_BROADCAST_RATE="20")
    sender = cli(["broadcast", "send", str(announcement(tmp_path / "a.yaml", "Kill test")), "--yes"], env)
    deadline = time.monotonic() + 60
    while len([c for c in graph.calls if c.ok]) < 20:
        assert time.monotonic() < deadline and sender.poll() is None, sender.stderr.read()
        time.sleep(0.01)
    sender.send_signal(signal.SIGKILL)
    sender.wait()
    with sqlite3.connect(database) as conn:
        left = dict(conn.execute("SELECT state, COUNT(*) FROM broadcast_recipients GROUP BY state").fetchall())
    assert left.get("pending", 0) > 0                                   # really killed half-way
    code, out, err = run(["broadcast", "resume", "1"], env)
    assert code == 0, err
    assert "Traceback" not in err + sender.stderr.read()
    got = Counter(c.to for c in graph.calls if c.ok)
    with sqlite3.connect(database) as conn:
        final = dict(conn.execute("SELECT p.address, r.state FROM broadcast_recipients r JOIN people p "
                                  "ON p.chat_id = r.chat_id").fetchall())
    assert max(got.values()) == 1                                       # nobody twice
    assert set(people) - set(got) <= {a for a, s in final.items() if s == "unknown"}   # no silent miss
    assert len([s for s in final.values() if s == "unknown"]) <= 10
    assert set(final.values()) <= {"sent", "unknown"}
    assert "Announcement #1 (alerts): done" in out
    for wa_id in people:
        assert wa_id not in out and wa_id not in err
