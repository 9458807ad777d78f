"""Privacy and robustness end to end: every kind of update, /forget, logs, the database file,
Telegram errors and the webhook's secret token."""

import asyncio
import io
import logging
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from auxil.bot_runner import (BotProcess, assert_answer, assert_fallback, button_data, buttons_of,
                              is_help_reply, run_bot, sent_to)

from bot.storage import Database, StorageError

ROOT = Path(__file__).resolve().parent.parent




def message(chat_id, lang="pt", chat_type="private", **content):
    return {"message": {"message_id": 7, "date": 1_700_000_000,
                        "chat": {"id": chat_id, "type": chat_type, **({"title": "G"} if chat_type != "private" else {})},
                        "from": {"id": abs(chat_id), "is_bot": False, "first_name": "A", "language_code": lang},
                        **content}}


NON_TEXT = {
    "photo": {"photo": [{"file_id": "p", "file_unique_id": "p1", "width": 10, "height": 10}]},
    "voice": {"voice": {"file_id": "v", "file_unique_id": "v1", "duration": 3}},
    "location": {"location": {"latitude": 42.36, "longitude": -71.06}},
    "contact": {"contact": {"phone_number": "+10000000000", "first_name": "X"}},
    "document": {"document": {"file_id": "d", "file_unique_id": "d1"}},
}


@pytest.mark.parametrize("kind", sorted(NON_TEXT))
def test_non_text_messages_get_a_friendly_answer(api, knowledge, tmp_path, kind):
    async def scenario():
        api.push_update(message(2001, **NON_TEXT[kind]))
        return await api.await_call(sent_to(2001))

    reply = run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    assert reply.params["text"] == "Eu só consigo ler texto. Escreva sua pergunta, ou escolha um tema."
    assert button_data(reply) == ["m@pt"]


def test_edits_and_channel_posts_are_ignored_on_purpose(api, knowledge, tmp_path):
    async def scenario():
        edited = message(2101, text="ICE na porta")["message"]
        api.push_update({"edited_message": {**edited, "edit_date": 1_700_000_100}})
        api.push_update({"channel_post": {"message_id": 1, "date": 1_700_000_000, "text": "hello",
                                          "chat": {"id": -1002, "type": "channel", "title": "C"}}})
        api.push_message(2102, "/help", language_code="en")   # a marker: everything before is handled
        await api.await_call(sent_to(2102))

    run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    assert {c.params["chat_id"] for c in api.requests("sendMessage")} == {2102}


def test_group_chats_get_a_notice_and_the_bot_leaves(api, knowledge, tmp_path):
    async def scenario():
        api.push_update(message(-3001, lang="es", chat_type="group", text="hola bot"))
        await api.await_call("leaveChat")
        start = len(api.calls)
        api.push_update({"my_chat_member": {
            "chat": {"id": -3002, "type": "supergroup", "title": "S"}, "date": 1_700_000_000,
            "from": {"id": 9, "is_bot": False, "first_name": "B", "language_code": "ht"},
            "old_chat_member": {"status": "left", "user": api.bot_user},
            "new_chat_member": {"status": "member", "user": api.bot_user}}})
        await api.await_call("leaveChat", start=start)

    run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    notices = {c.params["chat_id"]: c.params["text"] for c in api.requests("sendMessage")}
    assert "Solo respondo en chats individuales" in notices[-3001]
    assert "pa reponn nan gwoup" in notices[-3002]
    assert {c.params["chat_id"] for c in api.requests("leaveChat")} == {-3001, -3002}


@pytest.mark.parametrize("text, expected", [
    ("\u202eما هي حقوقي إذا جاءت الهجرة", "fallback"),    # Arabic (right-to-left mark): not a language it speaks
    ("a" * 4096, "fallback"),                              # as long as Telegram allows, and no words
    ("ICE\u200b na\u200d porta\x07", "ice-at-home"),        # invisible characters and a bell in a question
    ("👮‍♂️🚪❓", "words only"),                               # emoji only
])
def test_odd_texts_are_answered(api, knowledge, tmp_path, text, expected):
    """Odd texts from a Portuguese-speaking phone get the reply they call for, in Portuguese."""
    async def scenario():
        api.push_message(2201, text, language_code="pt-br")
        return await api.await_call(sent_to(2201))

    reply = run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    if expected == "fallback":
        assert_fallback(reply, "pt")
    elif expected == "words only":
        assert reply.params["text"] == "Eu só consigo ler texto. Escreva sua pergunta, ou escolha um tema."
        assert button_data(reply) == ["m@pt"]
    else:
        assert_answer(reply, knowledge.kb, expected, "pt")


def all_rows_mentioning(path, value):
    found = []
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                if any(cell == value or (isinstance(cell, str) and str(value) in cell) for cell in row):
                    found.append((table, row))
    return found


def test_forget_deletes_every_row_and_the_recent_messages(api, knowledge, tmp_path):
    database = tmp_path / "bot.sqlite3"

    async def scenario():
        api.push_message(2301, "Português", language_code="en")
        await api.await_call(sent_to(2301))
        api.push_message(2301, "/forget", language_code="en")
        ask = await api.await_call(lambda c: sent_to(2301)(c) and len(buttons_of(c)) == 2)
        yes = buttons_of(ask)[0]
        api.push_callback(2301, yes["callback_data"], message_id=ask.result["message_id"])
        done = await api.await_call(lambda c: sent_to(2301)(c) and "Tudo o que o bot" in c.params["text"])
        api.push_message(2302, "oi", language_code="pt-br")
        await api.await_call(sent_to(2302))
        return ask, done

    ask, done = run_bot(api, knowledge, database, scenario)
    assert "Tem certeza" in ask.params["text"]
    deletions = api.requests("deleteMessages")
    assert len(deletions) == 1
    deleted = set(deletions[0].params["message_ids"])
    bot_messages = {c.result["message_id"] for c in api.requests("sendMessage")
                    if c.params["chat_id"] == 2301 and c.result and c is not done}
    assert bot_messages <= deleted          # the bot's own replies, the question included
    assert len(deleted) >= len(bot_messages) + 2   # and the person's two messages
    assert all_rows_mentioning(database, 2301) == []
    assert all_rows_mentioning(database, 2302)       # someone else is untouched


def test_database_file_is_private_and_problems_are_clear_at_start(tmp_path):
    path = tmp_path / "data" / "bot.sqlite3"
    Database(path).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    broken = tmp_path / "broken.sqlite3"
    broken.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="damaged|not a database"):
        Database(broken)
    env = {**os.environ, "BOT_DATABASE": str(broken)}
    result = subprocess.run([sys.executable, "main.py", "chat"], input="", capture_output=True,
                            text=True, cwd=ROOT, env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("Cannot start:") and "Traceback" not in result.stderr


@pytest.fixture
def logging_as_run(bot_errors):
    """Logging set up by `setup_logging` exactly as `python main.py run` does (level from
    BOT_LOG_LEVEL, default INFO; the token as the secret to redact), with its one handler writing
    to a buffer: what the operator's terminal would show. Every logger's configuration is put
    back afterwards, so no filter or level leaks into later tests."""
    from bot.logs import setup_logging

    manager = logging.Logger.manager
    loggers = [logging.getLogger()] + [lg for lg in manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    saved = [(lg, lg.level, list(lg.handlers), list(lg.filters), lg.propagate, lg.disabled) for lg in loggers]

    def setup(token, level="INFO"):
        setup_logging(level, secrets=[token])
        root = logging.getLogger()
        [handler] = root.handlers                      # what setup_logging installed, and only that
        buffer = io.StringIO()
        handler.setStream(buffer)
        root.addHandler(bot_errors)                    # after it: the `api` fixture still sees errors
        return buffer

    yield setup
    for lg, level, handlers, filters, propagate, disabled in saved:
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.filters[:] = filters
        lg.propagate, lg.disabled = propagate, disabled
    for lg in manager.loggerDict.values():            # loggers created meanwhile
        if isinstance(lg, logging.Logger) and all(lg is not s[0] for s in saved):
            lg.setLevel(logging.NOTSET)
            lg.filters.clear()


def test_logs_hold_no_token_no_text_no_user_id(api, knowledge, tmp_path, logging_as_run):
    """What the running bot writes to its log at the default level: events, never the token (not
    even in httpx's request lines, which are silenced), the message text or who wrote."""
    secret_text = "meu marido foi preso pelo ICE em Framingham"
    stream = logging_as_run(api.token)

    async def scenario():
        api.fail_next("sendMessage", error_code=500, chat_id=424242)
        api.push_message(424242, secret_text, language_code="pt-br")
        await api.await_call(sent_to(424242), timeout=15)
        api.block_chat(434343)
        api.push_message(434343, secret_text, language_code="pt-br")
        await api.await_call(lambda c: c.method == "sendMessage" and c.error_code == 403)
        api.push_message(444444, "/help", language_code="en")
        await api.await_call(sent_to(444444))

    run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    logged = stream.getvalue()
    assert "dropped a reply: the person blocked the bot" in logged     # the log is this stream
    assert "INFO telegram.ext.Application: Application started" in logged
    requests = [line for line in logged.splitlines() if " httpx: " in line or " httpcore" in line]
    assert requests == []                               # httpx's lines (the token is in their URL)
    for forbidden in (api.token, api.token.split(":")[1], secret_text, "Framingham", "424242", "434343"):
        assert forbidden not in logged, forbidden


def test_the_token_is_redacted_even_in_tracebacks(api, knowledge, tmp_path, logging_as_run, monkeypatch,
                                                   bot_errors):
    """An error while handling an update is logged with its traceback (by the bot's error
    handler, as in production); a library error that quotes its request URL holds the token: it
    reaches the log as [TOKEN]."""
    from bot.engine import Engine

    stream = logging_as_run(api.token)
    handle = Engine.handle

    def failing(self, incoming):
        if incoming.user_id == 2450:
            raise RuntimeError(f"could not reach https://api.telegram.org/bot{api.token}/sendMessage")
        return handle(self, incoming)

    monkeypatch.setattr(Engine, "handle", failing)
    bot_errors.expect("could not reach https://api.telegram.org/bot")

    async def scenario():
        api.push_message(2450, "hello", language_code="en")
        api.push_message(2451, "/help", language_code="en")      # the bot goes on serving
        return await api.await_call(sent_to(2451))

    served = run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    logged = stream.getvalue()
    assert "error while handling an update: RuntimeError" in logged
    assert "Traceback (most recent call last):" in logged and "in failing" in logged   # the traceback is there
    assert api.token not in logged and api.token.split(":")[1] not in logged
    assert "RuntimeError: could not reach https://api.telegram.org/bot[TOKEN]/sendMessage" in logged
    assert is_help_reply(served)


def test_server_errors_are_retried_then_dropped_and_the_bot_keeps_serving(api, knowledge, tmp_path):
    async def scenario():
        api.fail_next("sendMessage", error_code=502, chat_id=2401)
        api.push_message(2401, "/help", language_code="en")
        retried = await api.await_call(sent_to(2401), timeout=15)
        api.fail_next("sendMessage", error_code=500, chat_id=2402, times=10)
        api.push_message(2402, "/help", language_code="en")
        api.push_message(2403, "/help", language_code="en")
        served = await api.await_call(sent_to(2403), timeout=20)
        return retried, served

    retried, served = run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    failures = [c for c in api.requests("sendMessage") if c.params["chat_id"] == 2402]
    assert len(failures) == 5 and all(c.error_code == 500 for c in failures)   # tried, then dropped
    assert is_help_reply(retried) and is_help_reply(served)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def post_update(port, update, secret=None, timeout=60.0):
    """POST an update to the bot's webhook as Telegram does, waiting for the server to listen."""
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.post(f"http://127.0.0.1:{port}/telegram", json=update, headers=headers, timeout=10)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def help_update(update_id, chat_id):
    return {"update_id": update_id, "message": message(chat_id, lang="en", text="/help",
                                                        entities=[{"type": "bot_command", "offset": 0,
                                                                   "length": 5}])["message"]}


WHATSAPP_SETTINGS = {"WHATSAPP_ACCESS_TOKEN": "EAAG-whatsapp-access-token-for-tests",
                     "WHATSAPP_PHONE_NUMBER_ID": "1098765432", "WHATSAPP_APP_SECRET": "app-secret-for-tests-0123",
                     "WHATSAPP_VERIFY_TOKEN": "verify-token-for-tests", "WHATSAPP_API_BASE_URL": "http://127.0.0.1:9"}


@pytest.mark.parametrize("beside", ["telegram alone", "with whatsapp"])
def test_run_with_a_webhook_answers_only_updates_with_telegrams_secret(api, tmp_path, beside):
    """`python main.py run --webhook-url ...`, as deployed, on Telegram alone or beside WhatsApp
    (the bot's HTTP server then runs too, another code path): it gives Telegram a secret with
    setWebhook and answers 403 to a POST without it or with another one (anybody who finds the
    URL could otherwise make the bot write to anyone, or read its answers)."""
    port, secret = _free_port(), "s3cret-token-for-tests_0123456789"
    env = {"TELEGRAM_WEBHOOK_SECRET": secret}
    if beside == "with whatsapp":
        env.update(WHATSAPP_SETTINGS, BOT_HTTP_HOST="127.0.0.1", BOT_HTTP_PORT=str(_free_port()))
    with BotProcess(api, tmp_path / "bot.sqlite3", "--webhook-url", "https://example.org/", "--port",
                    str(port), "--listen", "127.0.0.1", env=env) as bot:
        registered = bot.wait_for("setWebhook")
        no_secret = post_update(port, help_update(1, 2501))
        wrong = post_update(port, help_update(2, 2501), secret="guess")
        right = post_update(port, help_update(3, 2502), secret=secret)
        assert (no_secret.status_code, wrong.status_code, right.status_code) == (403, 403, 200)
        reply = bot.wait_for(sent_to(2502))
        right_again = post_update(port, help_update(4, 2503), secret=secret)   # a marker: all before it is handled
        bot.wait_for(sent_to(2503))
        status = bot.stop()
    assert right_again.status_code == 200
    assert registered.params["url"] == "https://example.org/telegram"
    assert registered.params.get("secret_token") == secret
    assert is_help_reply(reply)
    assert api.sent_texts(2501) == []                   # the refused updates were never handled
    assert status == 0 and bot.failures() == [], bot.log()
    assert " httpx: " not in bot.log()
    whatsapp_secrets = [WHATSAPP_SETTINGS[k] for k in ("WHATSAPP_ACCESS_TOKEN", "WHATSAPP_APP_SECRET",
                                                        "WHATSAPP_VERIFY_TOKEN")]
    for secret_value in (api.token, secret, *whatsapp_secrets):
        assert secret_value not in bot.log(), secret_value


def test_run_with_a_webhook_makes_up_a_secret_when_none_is_set(api, tmp_path):
    """Without TELEGRAM_WEBHOOK_SECRET, `run` draws a random secret at start: still nothing is
    answered without it."""
    port = _free_port()
    with BotProcess(api, tmp_path / "bot.sqlite3", "--webhook-url", "https://example.org", "--port",
                    str(port), "--listen", "127.0.0.1") as bot:
        secret = bot.wait_for("setWebhook").params.get("secret_token") or ""
        no_secret = post_update(port, help_update(1, 2511))
        empty = post_update(port, help_update(2, 2511), secret="")
        right = post_update(port, help_update(3, 2512), secret=secret)
        reply = bot.wait_for(sent_to(2512)) if right.status_code == 200 else None
        status = bot.stop()
    assert (no_secret.status_code, empty.status_code, right.status_code) == (403, 403, 200)
    assert len(secret) >= 32                            # random, not guessable
    assert is_help_reply(reply) and api.sent_texts(2511) == []
    assert status == 0 and bot.failures() == [], bot.log()


def test_lost_network_while_polling_does_not_stop_the_bot(api, knowledge, tmp_path, bot_errors):
    bot_errors.expect("Exception happened while polling for updates")   # python-telegram-bot says so, and retries

    async def scenario():
        api.fail_next("getUpdates", error_code=502, times=3)
        api.push_message(2601, "/help", language_code="en")
        return await api.await_call(sent_to(2601), timeout=30)

    reply = run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    failed_polls = [c for c in api.requests("getUpdates") if c.error_code == 502]
    assert len(failed_polls) == 3
    assert is_help_reply(reply)


def test_retention_purges_old_delivery_records_and_message_ids(db):
    db.remember_message(77, 1)
    with sqlite3.connect(db.path) as conn:
        conn.execute("UPDATE recent_messages SET at = '2020-01-01T00:00:00+00:00'")
        conn.execute("INSERT INTO broadcasts (topic, texts, default_language, composed_by, composed_at, "
                     "send_at, status, finished_at) VALUES ('alerts', '{}', 'en', 'cli:test', "
                     "'2020-01-01', '2020-01-01', 'done', '2020-01-02T00:00:00+00:00')")
        conn.execute("INSERT INTO broadcast_recipients (broadcast_id, chat_id, language, state, updated_at) "
                     "VALUES (1, 77, 'en', 'sent', '2020-01-02')")
    import datetime as dt

    counts = db.purge_expired(dt.timedelta(days=365), dt.timedelta(days=30), dt.timedelta(days=30))
    assert counts["message_ids"] == 1 and counts["delivery_records"] == 1
    assert all_rows_mentioning(db.path, 77) == []


def test_the_running_bot_schedules_retention_and_it_deletes_what_expired(api, knowledge, tmp_path):
    """The privacy promises (message numbers 48 hours, unanswered questions and delivery records 30
    days, people who stopped writing a year) hold because the running bot purges by itself: the
    application `run` builds has a repeating retention job, first soon after start; run now, it
    deletes what expired and keeps the rest."""
    import datetime as dt

    OLD, ACTIVE = 8_100_001, 8_200_002
    database = tmp_path / "bot.sqlite3"
    db = Database(database)
    for person in (OLD, ACTIVE):                                  # OLD stopped writing long ago; ACTIVE still writes
        db.touch_user(person)
        db.remember_message(person, 5)
    db.record_unanswered("an old question", "en", "none")
    broadcast = db.create_broadcast(topic="alerts", texts={"en": "x"}, default_language="en",
                                    composed_by="cli:test", lease_owner="me", lease_until=9e12)
    db.set_subscription(ACTIVE, ["alerts"], "en")
    db.start_broadcast(broadcast, "me")
    db.release_broadcast(broadcast, "me", "done")
    long_ago = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=400)).isoformat()
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE users SET last_seen = ? WHERE chat_id = ?", (long_ago, OLD))
        conn.execute("UPDATE recent_messages SET at = ? WHERE chat_id = ?", (long_ago, OLD))
        conn.execute("UPDATE unanswered SET asked_on = '2020-01-01'")
        conn.execute("UPDATE broadcasts SET finished_at = ?", (long_ago,))
    db.record_unanswered("a new question", "en", "none")
    db.close()
    assert all_rows_mentioning(database, OLD) and len(all_rows_mentioning(database, ACTIVE)) >= 3

    async def scenario(application):
        jobs = application.job_queue.get_jobs_by_name("retention")
        assert len(jobs) == 1, "the retention job is not scheduled"
        [job] = jobs
        scheduled = (job.job.trigger.interval, job.next_t - dt.datetime.now(dt.timezone.utc))
        await job.run(application)                           # what the scheduler does when it is due
        return scheduled

    interval, first_in = run_bot(api, knowledge, database, scenario)
    assert dt.timedelta(0) < interval <= dt.timedelta(hours=6)          # repeats, 4 times a day or more
    assert first_in <= dt.timedelta(minutes=1)                           # and starts soon after start
    assert all_rows_mentioning(database, OLD) == []                       # inactive for a year: gone
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT COUNT(*) FROM broadcast_recipients").fetchone()[0] == 0
        assert [r[0] for r in conn.execute("SELECT text FROM unanswered")] == ["a new question"]
        assert conn.execute("SELECT COUNT(*) FROM recent_messages WHERE chat_id = ?", (ACTIVE,)).fetchone()[0] >= 1
    assert Database(database).subscription(ACTIVE).active                    # the active person stays
