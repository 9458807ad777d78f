"""Announcements by SMS, end to end: `python main.py run` (SMS) for people subscribing through real
signed webhook posts, then `python main.py broadcast send` as its own process, against the Twilio
stand-in: each subscriber once at the number's rate, Twilio's 21610 (opted out) not retried, 429
and 5xx retried, a long announcement cut with its footer kept; and a kill -9 mid-broadcast."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from auxil.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio, count_segments
from auxil.http_bot import HttpBot
from test_sms_e2e import PUBLIC, text

from bot.i18n import translate
from bot.languages import NATIVE_NAMES
from bot.storage import Database

ROOT = Path(__file__).resolve().parent.parent
FOOTER = "You get this because you subscribed. To stop, send /unsubscribe or write STOP."


@pytest.fixture
def twilio():
    with FakeTwilio() as server:
        yield server
    assert not server.server_errors, server.server_errors


def twilio_env(twilio, database, **extra) -> dict:
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM_NUMBER": FROM_NUMBER,
           "TWILIO_API_BASE_URL": twilio.base_url, "BOT_DATABASE": str(database)}
    env.update(extra)
    return env


def cli(args, env):
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("TELEGRAM_", "BOT_", "WHATSAPP_", "TWILIO_"))}
    environment.update(env)
    return subprocess.Popen([sys.executable, "main.py", *args], cwd=ROOT, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(args, env, timeout=180):
    process = cli(args, env)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def announcement(path: Path, body: str, pt: str | None = None) -> Path:
    path.write_text(f"topic: alerts\ntext:\n  en: \"<b>{body}</b> (en)\"\n  pt: \"{pt or body + ' (pt)'}\"\n"
                    f"  es: \"{body} (es)\"\n  ht: \"{body} (ht)\"\n", encoding="utf-8")
    return path


def numbered(body: str, label: str) -> str:
    """The number of the choice whose label is `label` in a numbered SMS."""
    return next(line.split(" ", 1)[0] for line in body.splitlines()
                if line.split(" ", 1)[0].isdigit() and label in line)


def subscribe_by_sms(bot, twilio, number: str, lang: str) -> None:
    """/language, then /subscribe and the alerts choice, as a person does (real signed posts)."""
    picker = text(bot, twilio, number, "/language")
    text(bot, twilio, number, numbered(picker.body, NATIVE_NAMES[lang]))
    menu = text(bot, twilio, number, "/subscribe")
    assert "do not come on this app" not in menu.body
    done = text(bot, twilio, number, numbered(menu.body, translate(lang, "Urgent alerts")))
    assert done.ok


def sms_subscriber(db: Database, number: str, lang: str) -> int:
    person = db.person("sms", number)
    db.touch_user(person)
    db.set_subscription(person, ["alerts"], lang)
    return person


def test_an_announcement_to_sms_subscribers_once_each_at_the_numbers_rate(twilio, tmp_path):
    people = {"+16175550301": "en", "+5511987650301": "pt", "+50937000301": "ht"}
    opted_out = "+16175550302"      # replies STOP to Twilio while the bot is down: the bot doesn't know
    stopped = "+5215550000303"      # replies STOP to the bot: no longer in the audience
    bot = HttpBot(tmp_path, twilio_env(twilio, tmp_path / "bot.sqlite3", BOT_PUBLIC_URL=PUBLIC, TWILIO_RATE="20"),
                  ready_path="/sms/twilio")
    bot.url = bot.base + "/sms/twilio"
    try:
        for number, lang in {**people, opted_out: "en", stopped: "es"}.items():
            subscribe_by_sms(bot, twilio, number, lang)
        assert twilio.text(bot.url, stopped, "STOP", signed_url=PUBLIC + "/sms/twilio")[0] == 200
        twilio.wait_quiet(1.0)
    finally:
        assert bot.stop() == 0, bot.log()
    log = bot.log()
    assert not bot.failures(), log
    for number in (*people, opted_out, stopped):
        assert number not in log and number.lstrip("+") not in log
    with sqlite3.connect(bot.database) as conn:
        assert conn.execute("SELECT COUNT(*) FROM subscriptions WHERE active = 1").fetchone()[0] == 4
    twilio.opted_out.add(opted_out)
    env = twilio_env(twilio, bot.database)            # TWILIO_RATE unset: 1 message per second
    long_pt = "Batida relatada perto da estação, fiquem em casa e não abram a porta. " * 12
    file = announcement(tmp_path / "a.yaml", "Raid reported near the station", pt=long_pt)

    code, out, err = run(["broadcast", "send", str(file), "--dry-run"], env)
    assert code == 0, err
    assert "Português             1  own text  (Telegram 0, WhatsApp 0, SMS 1)" in out, out
    assert "English               2  own text  (Telegram 0, WhatsApp 0, SMS 2)" in out, out

    twilio.fail_next(503, 20500)          # a server error: that person is retried with backoff
    twilio.fail_next(429, 20429)          # too many requests: retried too, the lane waits
    start = len(twilio.calls)
    began = time.monotonic()
    code, out, err = run(["broadcast", "send", str(file), "--yes"], env)
    assert code == 0, err
    assert "Announcement #1 (alerts): done" in out, out + err
    calls = twilio.calls[start:]
    ok = [c for c in calls if c.ok]
    assert Counter(c.to for c in ok) == Counter(list(people))               # everyone once, exactly
    assert [c.status for c in calls if not c.ok].count(503) == 1
    assert [c.status for c in calls if not c.ok].count(429) == 1
    assert [c.to for c in calls if c.code == 21610] == [opted_out]      # tried once, never again
    assert stopped not in {c.to for c in calls}                         # STOP to the bot: not sent
    gaps = [b.at - a.at for a, b in zip(calls, calls[1:])]
    assert min(gaps) >= 0.9, gaps                                       # 1 message per second
    assert time.monotonic() - began >= len(calls) - 1
    by_person = {c.to: c for c in ok}
    for number, lang in people.items():
        sms = by_person[number]
        assert sms.segments <= 3 and count_segments(sms.body)[1] <= 3, (sms.segments, sms.body)
        assert sms.body.endswith(translate(lang, FOOTER))               # how to stop, in their language
        assert sms.body.startswith(translate(lang, "Urgent alert"))
        assert "<b>" not in sms.body and "🚨" not in sms.body
    assert "Raid reported near the station (en)" in by_person["+16175550301"].body
    assert "Raid reported near the station (ht)" in by_person["+50937000301"].body
    pt = by_person["+5511987650301"].body                               # long: cut, footer kept
    assert "Batida relatada perto da estação" in pt and "..." in pt and len(pt) < len(long_pt)
    with sqlite3.connect(bot.database) as conn:
        states = dict(conn.execute("SELECT state || ':' || COALESCE(error, ''), COUNT(*) FROM "
                                   "broadcast_recipients GROUP BY 1"))
        active = conn.execute("SELECT s.active FROM subscriptions s JOIN people p ON p.chat_id = s.chat_id "
                              "WHERE p.address = ?", (opted_out,)).fetchone()[0]
    assert states == {"sent:": 3, "blocked:opted_out": 1}
    assert active == 0                                                  # their announcements stopped
    for number in (*people, opted_out, stopped):                        # a phone number is never shown
        assert number not in out + err and number.lstrip("+") not in out + err

    # resumed again: nothing more goes out (the records say it is done)
    start = len(twilio.calls)
    code, out, err = run(["broadcast", "resume", "1"], env)
    assert code == 1 and "is done: nothing to resume" in err, out + err
    assert twilio.calls[start:] == []


def test_kill_9_mid_sms_broadcast_then_resume_no_duplicate_no_silent_miss(twilio, tmp_path):
    database = tmp_path / "bot.sqlite3"
    db = Database(database)
    people = {f"+1617555{4000 + i:04d}": ("pt", "en", "es", "ht")[i % 4] for i in range(40)}
    for number, lang in people.items():
        sms_subscriber(db, number, lang)
    db.close()
    env = twilio_env(twilio, database, TWILIO_RATE="20")
    sender = cli(["broadcast", "send", str(announcement(tmp_path / "a.yaml", "Kill test")), "--yes"], env)
    deadline = time.monotonic() + 60
    while len([c for c in twilio.calls if c.ok]) < 12:
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
    got = Counter(c.to for c in twilio.calls if c.ok)
    with sqlite3.connect(database) as conn:
        final = dict(conn.execute("SELECT p.address, r.state FROM broadcast_recipients r JOIN people p "
                                  "ON p.chat_id = r.chat_id").fetchall())
    assert max(got.values()) == 1                                       # nobody twice
    assert set(people) - set(got) <= {a for a, s in final.items() if s == "unknown"}   # no silent miss
    assert len([s for s in final.values() if s == "unknown"]) <= 10
    assert set(final.values()) <= {"sent", "unknown"}
    assert "Announcement #1 (alerts): done" in out
    for number in people:
        assert number not in out + err and number.lstrip("+") not in out + err
