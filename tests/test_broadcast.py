"""Broadcasts: composing in Telegram (role, preview, confirm, cancel), delivery over the stand-in
Bot API (languages and fallback, blocked people, 429, server errors, rate), exactly once across a
crash, a kill -9 and a restart, scheduling, and the command line."""

import asyncio
import datetime as dt
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from auxil.bot_runner import buttons_of, is_help_reply
from auxil.transcript import Conversation

from bot.broadcast import render
from bot.config import Settings
from bot.delivery import BroadcastService, Sender, SendBudget, open_bot
from bot.engine import Engine
from bot.i18n import use_language
from bot.storage import Database
from bot.telegram_app import build_application
from bot.telegram_html import to_plain

ROOT = Path(__file__).resolve().parent.parent
ADMIN = 4001           # in BOT_ADMIN_IDS
ORGANIZER = 4002       # granted the organizer role
LANGS = ("en", "pt", "es", "ht")


@pytest.fixture(autouse=True)
def quick_service(monkeypatch):
    monkeypatch.setattr(BroadcastService, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(BroadcastService, "PROGRESS_SECONDS", 0.2)


@pytest.fixture
def staff_engine(knowledge, db):
    db.grant(ORGANIZER, "organizer")
    return Engine(knowledge, db, frozenset({ADMIN}))


def subscribe(db, people, topic="alerts"):
    """people: {chat id: language}"""
    for chat, lang in people.items():
        db.touch_user(chat)
        db.set_subscription(chat, [topic], lang)


def audience_of(n, first=5000):
    return {first + i: LANGS[i % 4] for i in range(n)}


def delivered(api, marker):
    """How many times each chat got a message containing `marker`."""
    return Counter(c.params["chat_id"] for c in api.requests("sendMessage")
                   if c.ok and marker in c.params.get("text", ""))


def states(db_path, broadcast_id):
    with sqlite3.connect(db_path) as conn:
        return dict(conn.execute("SELECT chat_id, state FROM broadcast_recipients WHERE broadcast_id = ?",
                                 (broadcast_id,)).fetchall())


def send(api, db, broadcast_id, rate=500.0, **kwargs):
    """Send a broadcast from this process (as `broadcast send` does), without a progress bar."""
    settings = Settings(token=api.token, api_base_url=api.base_url)
    tweaks = {k: kwargs.pop(k) for k in ("MAX_ATTEMPTS", "BACKOFF_SECONDS") if k in kwargs}

    async def main():
        bot = open_bot(settings, 8)
        await bot.initialize()
        try:
            sender = Sender(db, bot, SendBudget(rate), **kwargs)
            for name, value in tweaks.items():
                setattr(sender, name, value)
            return await sender.run(broadcast_id)
        finally:
            await bot.shutdown()

    return asyncio.run(main())


def run_app(api, knowledge, database, scenario, rate=500.0):
    """The real application (long polling, with its broadcast service) against the stand-in."""

    async def main():
        db = Database(database)
        settings = Settings(token=api.token, api_base_url=api.base_url, database=database,
                            admin_ids=frozenset({ADMIN}), broadcast_rate=rate)
        application = build_application(settings, Engine(knowledge, db, frozenset({ADMIN})))
        try:
            async with application:
                await application.post_init(application)
                await application.updater.start_polling(poll_interval=0, timeout=1)
                await application.start()
                try:
                    return await scenario(db)
                finally:
                    await application.updater.stop()
                    await application.stop()
        finally:
            db.close()

    return asyncio.run(main())


def sender_process(alive: bool):
    """The lease name (`new_owner()`) of a sender in another process on this machine, and that
    process: still running with `alive` (it ends when its standard input is closed), else gone."""
    process = subprocess.Popen([sys.executable, "-c", "import sys; from bot.delivery import new_owner; "
                                "print(new_owner(), flush=True); sys.stdin.read()"],
                               cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    owner = process.stdout.readline().strip()
    assert owner, "the sender process did not start"
    if not alive:
        process.stdin.close()
        process.wait()
    return owner, process


async def until(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


# -- composing in Telegram (engine) ---------------------------------------------------------------------

def test_only_organizers_and_admins_may_broadcast(staff_engine, db):
    db.grant(4003, "editor")
    for person in (4000, 4003):        # nobody special, an editor
        chat = Conversation(staff_engine, user_id=person, language_hint="pt-br")
        reply = chat.say("/broadcast").replies
        assert len(reply) == 1
        with use_language("pt"):
            expected = staff_engine.unknown_command()
        assert (reply[0].text, reply[0].buttons) == (expected.text, expected.buttons)
        assert chat.press_data("b:t:alerts@pt").replies[0].text == expected.text
        assert chat.say("/cancel").replies[0].text == expected.text
        assert db.draft(person) is None and db.broadcasts() == []
    for person in (ADMIN, ORGANIZER):
        chat = Conversation(staff_engine, user_id=person, language_hint="en")
        chat.say("/broadcast")
        assert "New announcement" in chat.text
        assert [b.label for b in chat.buttons()] == ["🚨 Urgent alerts", "📣 Campaign news and events", "Cancel"]


def press_action(chat, action):
    """Press the button whose data is `action` (whatever its label's language)."""
    [data] = [b.data for b in chat.buttons() if b.data.split("@")[0] == action]
    return chat.press_data(data)


def compose(chat, texts, topic="alerts"):
    """Go through /broadcast: pick the topic, then send or skip each language."""
    chat.say("/broadcast")
    press_action(chat, f"b:t:{topic}")
    for lang, name in zip(LANGS, ("English", "Português", "Español", "Kreyòl ayisyen")):
        assert name in chat.text
        if lang in texts:
            chat.say(texts[lang])
        else:
            press_action(chat, f"b:skip:{lang}")


def test_compose_preview_then_send_records_one_broadcast(staff_engine, db):
    subscribe(db, {101: "en", 102: "pt", 103: "es", 104: "ht", 105: "ht"})
    subscribe(db, {106: "en"}, topic="news")
    chat = Conversation(staff_engine, user_id=ORGANIZER, language_hint="en")
    texts = {"en": "Rally at the State House <Thursday> & bring a friend", "pt": "Ato na State House quinta",
             "ht": "Rasanbleman nan State House jedi"}
    compose(chat, texts)
    replies = chat.last.replies
    assert len(replies) == 6                                     # intro, 4 previews, summary
    escaped = {lang: t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for lang, t in texts.items()}
    for reply, lang in zip(replies[1:5], LANGS):
        assert reply.text == render("alerts", escaped, "en", lang)   # exactly what recipients get
    assert "Rally at the State House" in to_plain(replies[3].text)   # Spanish falls back to English
    assert "Alerta urgente" in replies[3].text and "Recibe esto porque se suscribió" in replies[3].text
    summary = to_plain(replies[5].text)
    assert "people who will get it: 5" in summary
    assert "• English: 1" in summary and "• Kreyòl ayisyen: 2" in summary
    assert "• Español: 1 — gets the English text" in summary
    chat.press("Send to everyone (5)")
    assert "Announcement #1 is on its way" in chat.text and chat.last.replies[0].replace
    chat.press_data("b:send@en")                                  # a double press
    assert "There is no announcement in progress" in chat.text
    [record] = db.broadcasts()
    assert (record.topic, record.status, record.default_language, record.texts) == ("alerts", "scheduled", "en",
                                                                                    escaped)
    assert record.composed_by == f"telegram:{ORGANIZER}" and record.report_chat == ORGANIZER


def test_cancel_before_confirm_sends_nothing(staff_engine, db):
    subscribe(db, {111: "en"})
    chat = Conversation(staff_engine, user_id=ADMIN, language_hint="es")
    compose(chat, {"es": "Hola"})
    chat.press("Cancelar")
    assert chat.text == "Cancelado: no se envió nada."
    assert db.broadcasts() == [] and db.draft(ADMIN) is None
    chat.say("/broadcast")
    chat.press("Alertas urgentes")
    chat.say("Texto")
    assert chat.say("/cancel").replies[0].text == "Cancelado: no se envió nada."
    assert db.broadcasts() == []
    assert "Hola" in chat.say("hola").replies[0].text            # chatting again, not composing


def test_composing_checks_texts_and_needs_at_least_one(staff_engine, db):
    chat = Conversation(staff_engine, user_id=ORGANIZER, language_hint="ht")
    chat.say("/broadcast")
    chat.press("Alèt ijan")
    chat.say("x" * 3501)
    assert "Tèks sa a twò long: 3501 karaktè" in chat.text and "English" in chat.text
    for lang in LANGS:
        press_action(chat, f"b:skip:{lang}")
    assert "Yon anons bezwen yon tèks nan omwen yon lang." in chat.text and "1/4" in chat.text
    assert db.unanswered_since(dt.date(2000, 1, 1)) == []    # an organizer's texts are not "questions"


def test_nobody_subscribed_means_nothing_to_send(staff_engine, db):
    chat = Conversation(staff_engine, user_id=ADMIN, language_hint="en")
    compose(chat, {"en": "Hello"}, topic="news")
    assert "Nobody is subscribed to this topic yet" in chat.text
    assert [b.label for b in chat.buttons()] == ["Cancel"]


# -- delivery over the stand-in Bot API -----------------------------------------------------------------

def test_each_language_gets_its_text_and_the_others_the_default(api, db):
    people = audience_of(8)
    subscribe(db, people)
    broadcast = db.create_broadcast(topic="alerts", texts={"pt": "Texto PT", "es": "Texto ES", "ht": "Tèks HT"},
                                    default_language="pt", composed_by="cli:test")
    outcome = send(api, db, broadcast)
    assert outcome.status == "done" and outcome.counts == {"sent": 8}
    for chat, lang in people.items():
        [text] = api.sent_texts(chat)
        body = {"en": "Texto PT", "pt": "Texto PT", "es": "Texto ES", "ht": "Tèks HT"}[lang]
        assert text == render("alerts", {"pt": "Texto PT", "es": "Texto ES", "ht": "Tèks HT"}, "pt", lang)
        assert body in text
    assert "You get this because you subscribed" in api.sent_texts(5000)[0]     # English chrome
    assert all(c.params["parse_mode"] == "HTML" for c in api.requests("sendMessage"))


def test_blocked_and_gone_people_are_marked_inactive(api, db, tmp_path):
    people = audience_of(6)
    subscribe(db, people)
    api.block_chat(5001)
    api.fail_next("sendMessage", error_code=403, description="Forbidden: user is deactivated", chat_id=5002)
    api.fail_next("sendMessage", error_code=400, description="Bad Request: chat not found", chat_id=5003)
    api.fail_next("sendMessage", error_code=400, description="Bad Request: can't parse entities", chat_id=5004)
    first = db.create_broadcast(topic="alerts", texts={"en": "One"}, default_language="en", composed_by="cli:t")
    outcome = send(api, db, first)
    assert outcome.counts == {"sent": 2, "blocked": 3, "failed": 1}
    rows = {r[0]: r[1:] for r in sqlite3.connect(tmp_path / "bot.sqlite3").execute(
        "SELECT chat_id, state, error FROM broadcast_recipients")}
    assert rows[5001] == ("blocked", "blocked") and rows[5002] == ("blocked", "deactivated")
    assert rows[5003] == ("blocked", "chat_not_found") and rows[5004] == ("failed", "bad_request")
    assert [db.subscription(c).active for c in (5001, 5002, 5003, 5004)] == [False, False, False, True]
    second = db.create_broadcast(topic="alerts", texts={"en": "Two"}, default_language="en", composed_by="cli:t")
    assert send(api, db, second).counts == {"sent": 3}           # the unreachable are not tried again
    assert not [c for c in api.requests("sendMessage") if c.params["chat_id"] == 5001 and "Two" in c.params["text"]]


def test_429_waits_as_long_as_telegram_says_and_delivers_once(api, db):
    subscribe(db, audience_of(6))
    api.fail_next("sendMessage", error_code=429, retry_after=1, chat_id=5002)
    broadcast = db.create_broadcast(topic="alerts", texts={"en": "Hi"}, default_language="en", composed_by="cli:t")
    outcome = send(api, db, broadcast, concurrency=1)                 # one request at a time
    assert outcome.counts == {"sent": 6} and outcome.flood_waits == 1
    assert set(delivered(api, "Hi").values()) == {1} and len(delivered(api, "Hi")) == 6
    calls = api.requests("sendMessage")
    refused = next(i for i, c in enumerate(calls) if c.error_code == 429)
    assert calls[refused + 1].time - calls[refused].time >= 0.9     # everyone waited, as Telegram asked


def test_server_errors_are_retried_with_backoff_then_given_up(api, db, tmp_path):
    subscribe(db, audience_of(4))
    api.fail_next("sendMessage", error_code=502, chat_id=5001, times=2)
    api.fail_next("sendMessage", error_code=500, chat_id=5002, times=10)
    broadcast = db.create_broadcast(topic="alerts", texts={"en": "Hi"}, default_language="en", composed_by="cli:t")
    outcome = send(api, db, broadcast, MAX_ATTEMPTS=3, BACKOFF_SECONDS=0.05)
    assert outcome.counts == {"sent": 3, "failed": 1}
    assert [c.error_code for c in api.requests("sendMessage") if c.params["chat_id"] == 5001] == [502, 502, None]
    tries = [c for c in api.requests("sendMessage") if c.params["chat_id"] == 5002]
    assert [c.error_code for c in tries] == [500, 500, 500]
    assert all(b.time - a.time >= 0.95 for a, b in zip(tries, tries[1:]))   # one per second per chat at most
    error = sqlite3.connect(tmp_path / "bot.sqlite3").execute(
        "SELECT state, error, attempts FROM broadcast_recipients WHERE chat_id = 5002").fetchone()
    assert error == ("failed", "server", 3)


def test_the_rate_limits_are_kept(api, db):
    subscribe(db, audience_of(50))
    api.enforce_rate_limits(total_per_second=25, per_chat_per_second=1)
    broadcast = db.create_broadcast(topic="alerts", texts={"en": "Hi"}, default_language="en", composed_by="cli:t")
    outcome = send(api, db, broadcast, rate=25)
    assert outcome.counts == {"sent": 50} and outcome.flood_waits == 0
    assert api.rate_limited_count == 0 and all(c.ok for c in api.requests("sendMessage"))   # no burst: no 429


def test_a_crash_between_the_two_writes_is_not_sent_again_and_is_reported(api, db, tmp_path):
    people = audience_of(10)
    subscribe(db, people)
    crashed, _process = sender_process(alive=False)      # a sender that died mid-way
    broadcast = db.create_broadcast(topic="alerts", texts={"en": "Hi"}, default_language="en", composed_by="cli:t",
                                    lease_owner=crashed, lease_until=time.time() + 3600)
    db.start_broadcast(broadcast, crashed)
    for chat in (5000, 5001, 5002):
        assert db.begin_send(broadcast, chat, "alerts", crashed) == "go"
        db.end_send(broadcast, chat, "sent")
    assert db.begin_send(broadcast, 5003, "alerts", crashed) == "go"   # then killed during this request
    outcome = send(api, db, broadcast)
    assert outcome.status == "done" and outcome.interrupted == 1
    assert outcome.counts == {"sent": 9, "unknown": 1}
    assert set(delivered(api, "Hi")) == set(people) - {5000, 5001, 5002, 5003}   # nobody twice
    assert states(tmp_path / "bot.sqlite3", broadcast)[5003] == "unknown"
    again = db.create_broadcast(topic="alerts", texts={"en": "Hi"}, default_language="en", composed_by="cli:t")
    assert send(api, db, again).status == "done"                      # an unrelated, clean run


def test_a_broadcast_held_by_a_live_process_is_not_taken_over(api, db):
    subscribe(db, audience_of(2))
    holder, process = sender_process(alive=True)
    try:
        broadcast = db.create_broadcast(topic="alerts", texts={"en": "Hi"}, default_language="en",
                                        composed_by="cli:t", lease_owner=holder, lease_until=time.time() + 60)
        assert send(api, db, broadcast).status == "busy"              # its holder is still running
    finally:
        process.stdin.close()
        process.wait()
    assert api.requests("sendMessage") == []


def cli(args, env, timeout=120, **kwargs):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BOT_"))}
    environment.update(env)
    return subprocess.run([sys.executable, "main.py", *args], capture_output=True, text=True, cwd=ROOT,
                          env=environment, timeout=timeout, **kwargs)


def write_announcement(path, body="Workshop on Saturday", **extra):
    lines = [f"topic: {extra.pop('topic', 'alerts')}"] + [f"{k}: {v}" for k, v in extra.items()]
    lines += ["text:", f"  en: \"{body} (en)\"", f"  pt: \"{body} (pt)\"", f"  ht: \"{body} (ht)\""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_kill_9_half_way_then_resume_no_duplicate_no_silent_miss(api, tmp_path):
    database = tmp_path / "bot.sqlite3"
    db = Database(database)
    people = audience_of(60)
    subscribe(db, people)
    db.close()
    env = {"TELEGRAM_BOT_TOKEN": api.token, "TELEGRAM_API_BASE_URL": api.base_url, "BOT_DATABASE": str(database)}
    api.enforce_rate_limits(total_per_second=20, per_chat_per_second=1)
    announcement = write_announcement(tmp_path / "a.yaml", body="Kill test")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BOT_"))}
    sender = subprocess.Popen([sys.executable, "main.py", "broadcast", "send", str(announcement), "--yes",
                               "--rate", "20"], cwd=ROOT, env={**environment, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while sum(delivered(api, "Kill test").values()) < 20:
        assert time.monotonic() < deadline and sender.poll() is None, sender.stderr.read()
        time.sleep(0.01)
    sender.send_signal(signal.SIGKILL)
    sender.wait()
    with sqlite3.connect(database) as conn:
        left = dict(conn.execute("SELECT state, COUNT(*) FROM broadcast_recipients GROUP BY state").fetchall())
    assert left.get("pending", 0) > 0                                # really killed half-way
    resumed = cli(["broadcast", "resume", "1", "--rate", "20"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr + sender.stderr.read().decode(errors="replace")
    got = delivered(api, "Kill test")
    final = states(database, 1)
    assert max(got.values()) == 1                                    # nobody twice
    missed = set(people) - set(got)
    assert missed <= {c for c, s in final.items() if s == "unknown"}  # a miss is never silent
    assert len([s for s in final.values() if s == "unknown"]) <= 10   # at most the requests in flight
    assert set(final.values()) <= {"sent", "unknown"} and api.rate_limited_count == 0
    assert "Announcement #1 (alerts): done" in resumed.stdout


def test_send_from_the_command_line_with_progress_and_report(api, tmp_path):
    database = tmp_path / "bot.sqlite3"
    db = Database(database)
    subscribe(db, audience_of(12))
    db.close()
    env = {"TELEGRAM_BOT_TOKEN": api.token, "TELEGRAM_API_BASE_URL": api.base_url, "BOT_DATABASE": str(database)}
    result = cli(["broadcast", "send", str(write_announcement(tmp_path / "a.yaml")), "--yes", "--rate", "40"], env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and api.token not in result.stderr
    assert "12/12 100%" in result.stderr and "/s" in result.stderr and "left" in result.stderr
    assert "Announcement #1 (alerts): done" in result.stdout and "sent" in result.stdout
    assert len(delivered(api, "Workshop on Saturday")) == 12
    spanish = [c for c in api.requests("sendMessage") if c.params["chat_id"] == 5002][0].params["text"]
    assert "Workshop on Saturday (en)" in spanish and "Alerta urgente" in spanish   # fallback, own chrome
    status = cli(["broadcast", "status", "1"], env)
    assert "Announcement #1: done" in status.stdout and "audience       12" in status.stdout
    assert "composed_by" not in status.stdout and "cli:" in status.stdout


def test_dry_run_shows_every_language_and_records_nothing(tmp_path):
    database = tmp_path / "bot.sqlite3"
    db = Database(database)
    subscribe(db, audience_of(5))
    db.close()
    result = cli(["broadcast", "send", str(write_announcement(tmp_path / "a.yaml")), "--dry-run"],
                 {"BOT_DATABASE": str(database)})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Topic: alerts (5 subscribers)" in out and "Español" in out and "gets the en text" in out
    assert "----- Kreyòl ayisyen (1) -----" in out and "Workshop on Saturday (ht)" in out
    assert "Ou resevwa sa paske ou te enskri" in out and "<b>" not in out
    assert "Dry run: nothing was sent or recorded." in out
    assert Database(database).broadcasts() == []


def test_a_bad_file_lists_every_problem_and_sends_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("topic: alert\nsubject: hi\ndefault_language: es\nsend_at: 2001-01-01 10:00\n"
                   "text:\n  en: \"Tom & Jerry <3\"\n  fr: \"Bonjour\"\n  pt: \"\"\n", encoding="utf-8")
    result = cli(["broadcast", "send", str(bad), "--yes"], {"BOT_DATABASE": str(tmp_path / "bot.sqlite3")})
    assert result.returncode == 2
    for problem in ("unknown key 'subject'", "topic must be one of: alerts, news", "text.fr: unknown language",
                    "text.pt: empty", "text.en: a bare & must be written &amp;", "default_language: 'es' has no text",
                    "is in the past", "Nothing was sent."):
        assert problem in result.stderr, problem


def test_schedule_list_status_cancel(tmp_path):
    env = {"BOT_DATABASE": str(tmp_path / "bot.sqlite3")}
    Database(tmp_path / "bot.sqlite3").close()
    scheduled = cli(["broadcast", "send", str(write_announcement(tmp_path / "a.yaml", send_at="2099-01-15 18:00",
                                                                 topic="news")), "--yes"], env)
    assert scheduled.returncode == 0, scheduled.stderr
    assert "Scheduled as announcement #1" in scheduled.stdout
    listing = cli(["broadcast", "list"], env).stdout
    assert "scheduled 2099-01-15 18:00" in listing and "news" in listing
    assert "scheduled for  2099-01-15 18:00" in cli(["broadcast", "status", "1"], env).stdout
    assert cli(["broadcast", "resume", "1"], env).returncode == 1      # not due yet
    assert "is cancelled" in cli(["broadcast", "cancel", "1"], env).stdout
    assert "Announcement #1: cancelled" in cli(["broadcast", "status", "1"], env).stdout
    assert cli(["broadcast", "status", "9"], env).returncode == 2


# -- in the bot: composing, progress, answers while sending, restarts, schedules -------------------------

def sent_to(chat):
    return lambda c: c.method == "sendMessage" and c.params.get("chat_id") == chat and c.ok


def test_organizer_sends_a_four_language_announcement_from_telegram(api, knowledge, tmp_path):
    people = audience_of(8)

    async def scenario(db):
        subscribe(db, people)
        api.push_message(ADMIN, "/broadcast", language_code="en")
        picker = await api.await_call(sent_to(ADMIN))
        topic = next(b for b in buttons_of(picker) if "Urgent" in b["text"])
        api.push_callback(ADMIN, topic["callback_data"], message_id=picker.result["message_id"])
        await api.await_call("editMessageText")
        for lang, text in zip(LANGS, ("March on Sunday", "Marcha no domingo", None, "Mach dimanch")):
            start = len(api.calls)
            if text is None:
                ask = last_ask
                skip = next(b for b in buttons_of(ask) if b["text"].startswith("Skip"))
                api.push_callback(ADMIN, skip["callback_data"], message_id=ask.result["message_id"])
            else:
                api.push_message(ADMIN, text, language_code="en")
            last_ask = await api.await_call(lambda c: sent_to(ADMIN)(c) and buttons_of(c), start=start)
        summary = last_ask
        send_button = next(b for b in buttons_of(summary) if b["text"].startswith("✅"))
        start = len(api.calls)
        api.push_callback(ADMIN, send_button["callback_data"], message_id=summary.result["message_id"])
        report = await api.await_call(lambda c: sent_to(ADMIN)(c) and "finished" in c.params["text"],
                                      start=start, timeout=20)
        return summary, report, start

    summary, report, start = run_app(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    assert "people who will get it: 8" in summary.params["text"]
    assert "Sent: 8" in report.params["text"] and "Failed: 0" in report.params["text"]
    progress = [c for c in api.calls[start:] if c.params.get("chat_id") == ADMIN and "📤" in (c.params.get("text") or "")]
    assert progress and progress[0].method == "sendMessage" and progress[-1].method == "editMessageText"
    assert "8 of 8" in progress[-1].params["text"]
    for chat, lang in people.items():
        [text] = api.sent_texts(chat)
        body = {"en": "March on Sunday", "pt": "Marcha no domingo", "es": "March on Sunday", "ht": "Mach dimanch"}
        assert body[lang] in text
    assert "Alerta urgente" in api.sent_texts(5002)[0]


def test_answers_to_people_chatting_during_a_broadcast_go_at_once_and_within_telegrams_limit(
        api, knowledge, tmp_path):
    """README: a broadcast keeps one place in each second free for an answer to someone
    chatting, and every answer takes a turn from the same budget, so answers never wait behind
    an announcement and never meet a 429. With the stand-in enforcing Telegram's limits (here 10
    messages per second in total, 1 per chat), people write one after another while it goes out:
    each is answered at the first try, during the broadcast, and the broadcast meets no 429."""
    rate = 10
    people = audience_of(40)
    api.enforce_rate_limits(total_per_second=rate, per_chat_per_second=1)
    chatters = range(4900, 4915)

    async def scenario(db):
        subscribe(db, people)
        db.create_broadcast(topic="alerts", texts={"en": "Long one"}, default_language="en", composed_by="cli:t")
        await api.await_call(lambda c: c.ok and "Long one" in (c.params.get("text") or ""))
        for person in chatters:             # one after another, each as soon as the last was answered
            if db.broadcast(1).status == "done":
                break
            start = len(api.calls)
            api.push_message(person, "/help", language_code="en")
            await api.await_call(lambda c: c.method == "sendMessage" and c.params.get("chat_id") == person,
                                 start=start)
            await asyncio.sleep(0.6)
        await until(lambda: db.broadcast(1).status == "done", timeout=30)

    run_app(api, knowledge, tmp_path / "bot.sqlite3", scenario, rate=rate)
    calls = api.requests("sendMessage")
    refused = [(c.params["chat_id"], c.description) for c in calls if not c.ok]
    assert refused == [] and api.rate_limited_count == 0
    answers = [i for i, c in enumerate(calls) if c.params["chat_id"] in chatters]
    last_broadcast = max(i for i, c in enumerate(calls) if "Long one" in c.params["text"])
    during = [i for i in answers if i < last_broadcast]
    assert len(during) >= 4                                   # they really wrote while it went out
    assert all(is_help_reply(calls[i]) for i in answers)
    assert set(delivered(api, "Long one").values()) == {1} and len(delivered(api, "Long one")) == 40


def test_an_urgent_alert_goes_before_the_rest_of_a_news_broadcast(api, knowledge, tmp_path):
    news_people = audience_of(20)
    alert_people = audience_of(3, first=6000)

    async def scenario(db):
        subscribe(db, news_people, topic="news")
        subscribe(db, alert_people, topic="alerts")
        db.create_broadcast(topic="news", texts={"en": "Newsletter"}, default_language="en", composed_by="cli:t")
        await until(lambda: len(delivered(api, "Newsletter")) >= 3)
        db.create_broadcast(topic="alerts", texts={"en": "Raid now"}, default_language="en", composed_by="cli:t")
        await until(lambda: db.broadcast(1).status == "done" and db.broadcast(2).status == "done", timeout=20)

    run_app(api, knowledge, tmp_path / "bot.sqlite3", scenario, rate=10)
    calls = [c for c in api.requests("sendMessage") if c.ok]
    last_alert = max(i for i, c in enumerate(calls) if "Raid now" in c.params["text"])
    last_news = max(i for i, c in enumerate(calls) if "Newsletter" in c.params["text"])
    assert last_alert < last_news                                    # the alert did not wait
    assert set(delivered(api, "Newsletter").values()) == {1} and len(delivered(api, "Newsletter")) == 20
    assert len(delivered(api, "Raid now")) == 3


def test_an_interrupted_broadcast_resumes_when_the_bot_starts_again(api, knowledge, tmp_path):
    people = audience_of(40)
    database = tmp_path / "bot.sqlite3"

    async def first_run(db):
        subscribe(db, people)
        db.create_broadcast(topic="alerts", texts={"en": "Resume me"}, default_language="en", composed_by="cli:t")
        await until(lambda: len(delivered(api, "Resume me")) >= 10)

    run_app(api, knowledge, database, first_run, rate=20)           # the bot stops half-way
    halfway = len(delivered(api, "Resume me"))
    assert halfway < len(people) and Database(database).broadcast(1).status == "sending"

    async def second_run(db):
        await until(lambda: db.broadcast(1).status == "done", timeout=20)

    run_app(api, knowledge, database, second_run, rate=200)
    got = delivered(api, "Resume me")
    assert set(got) == set(people) and set(got.values()) == {1}


def test_a_scheduled_broadcast_survives_a_restart(api, knowledge, tmp_path):
    """Not sent before it is due, although the bot is running; sent when due by the bot started
    again. The due time is built from this machine's measured start-up: the first run lives
    about as long again (it watches several of the service's passes, then stops), so the
    broadcast falls due after the first run has stopped, on a slow machine too."""
    database = tmp_path / "bot.sqlite3"
    started = time.monotonic()
    window = {}

    async def before(db):
        startup = time.monotonic() - started
        watch = 10 * BroadcastService.POLL_SECONDS
        due = dt.datetime.fromtimestamp(math.ceil(time.time() + watch + 2 * startup + 2), dt.timezone.utc)
        subscribe(db, audience_of(3))
        db.create_broadcast(topic="alerts", texts={"en": "Later"}, default_language="en", composed_by="cli:t",
                            send_at=due.isoformat())
        window.update(due=due, startup=startup)
        await asyncio.sleep(watch)

    run_app(api, knowledge, database, before)
    due = window["due"]
    assert time.time() < due.timestamp(), f"the test's premise: the first run stopped before {due} ({window})"
    assert delivered(api, "Later") == {} and Database(database).broadcast(1).status == "scheduled"

    async def after(db):
        await until(lambda: db.broadcast(1).status == "done", timeout=due.timestamp() - time.time() + 30)

    run_app(api, knowledge, database, after)
    assert len(delivered(api, "Later")) == 3
    first = min(c.time for c in api.requests("sendMessage") if "Later" in c.params.get("text", ""))
    assert first >= due.timestamp() - 0.01                            # not before it was due
