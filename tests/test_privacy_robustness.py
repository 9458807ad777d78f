"""Privacy and robustness end to end: every kind of update, /forget, logs, the database file,
Telegram errors and the webhook's secret token."""

import asyncio
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
from auxil.bot_runner import BotProcess, buttons_of, run_bot, sent_to

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
    assert reply.params["text"].startswith("Eu só consigo ler texto")


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


@pytest.mark.parametrize("text", ["\u202eما هي حقوقي إذا جاءت الهجرة", "a" * 4096,
                                  "ICE\u200b na\u200d porta\x07", "👮‍♂️🚪❓"])
def test_odd_texts_are_answered(api, knowledge, tmp_path, text):
    async def scenario():
        api.push_message(2201, text, language_code="pt-br")
        return await api.await_call(sent_to(2201))

    reply = run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    assert 0 < len(reply.params["text"]) <= 4096


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


def test_logs_hold_no_token_no_text_no_user_id(api, knowledge, tmp_path, caplog):
    secret_text = "meu marido foi preso pelo ICE em Framingham"

    async def scenario():
        api.fail_next("sendMessage", error_code=500, chat_id=424242)
        api.push_message(424242, secret_text, language_code="pt-br")
        await api.await_call(sent_to(424242), timeout=15)
        api.block_chat(434343)
        api.push_message(434343, secret_text, language_code="pt-br")
        await api.await_call(lambda c: c.method == "sendMessage" and c.error_code == 403)
        api.push_message(444444, "/help", language_code="en")
        await api.await_call(sent_to(444444))

    from bot.logs import RedactSecrets

    redact = RedactSecrets([api.token])
    logging.getLogger().addFilter(redact)
    caplog.handler.addFilter(redact)
    with caplog.at_level(logging.INFO):
        run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "dropped a reply: the person blocked the bot" in logged
    for forbidden in (api.token, api.token.split(":")[1], secret_text, "Framingham", "424242", "434343"):
        assert forbidden not in logged, forbidden


def test_the_token_is_redacted_even_in_tracebacks():
    from bot.logs import RedactSecrets

    token = "123456789:AAHfakefakefakefakefakefakefakefake"
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", (f"https://x/bot{token}/getMe",),
                               None)
    try:
        raise RuntimeError(f"bad url https://api.telegram.org/bot{token}/sendMessage")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    RedactSecrets([token]).filter(record)
    assert token not in record.getMessage() and "[TOKEN]" in record.getMessage()


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
    assert len(failures) == 3 and all(c.error_code == 500 for c in failures)   # tried, then dropped
    assert "/menu" in served.params["text"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HELP_START = "I answer questions about immigrants' rights in Massachusetts"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def is_help_reply(call, lang_hint="en"):
    """The English /help reply: its text and its one button, the menu."""
    return (call.params["text"].startswith(HELP_START) and "/subscribe" in call.params["text"]
            and buttons_of(call) == [{"text": "☰ Menu", "callback_data": "m@en"}])


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


def test_run_with_a_webhook_answers_only_updates_with_telegrams_secret(api, tmp_path):
    """`python main.py run --webhook-url ...`, as deployed: it gives Telegram a secret with
    setWebhook and answers 403 to a POST without it or with another one (anybody who finds the
    URL could otherwise make the bot write to anyone, or read its answers)."""
    port, secret = _free_port(), "s3cret-token-for-tests_0123456789"
    with BotProcess(api, tmp_path / "bot.sqlite3", "--webhook-url", "https://example.org/", "--port",
                    str(port), "--listen", "127.0.0.1", env={"TELEGRAM_WEBHOOK_SECRET": secret}) as bot:
        registered = bot.wait_for("setWebhook")
        no_secret = post_update(port, help_update(1, 2501))
        wrong = post_update(port, help_update(2, 2501), secret="guess")
        right = post_update(port, help_update(3, 2502), secret=secret)
        reply = bot.wait_for(sent_to(2502))
        right_again = post_update(port, help_update(4, 2503), secret=secret)   # a marker: all before it is handled
        bot.wait_for(sent_to(2503))
        status = bot.stop()
    assert (no_secret.status_code, wrong.status_code) == (403, 403)
    assert (right.status_code, right_again.status_code) == (200, 200)
    assert registered.params["url"] == "https://example.org/telegram"
    assert registered.params.get("secret_token") == secret
    assert is_help_reply(reply)
    assert api.sent_texts(2501) == []                   # the refused updates were never handled
    assert status == 0 and bot.failures() == [], bot.log()


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
        reply = bot.wait_for(sent_to(2512))
        status = bot.stop()
    assert (no_secret.status_code, empty.status_code, right.status_code) == (403, 403, 200)
    assert len(secret) >= 32                            # random, not guessable
    assert is_help_reply(reply) and api.sent_texts(2511) == []
    assert status == 0 and bot.failures() == [], bot.log()


def test_lost_network_while_polling_does_not_stop_the_bot(api, knowledge, tmp_path):
    async def scenario():
        api.fail_next("getUpdates", error_code=502, times=3)
        api.push_message(2601, "/help", language_code="en")
        return await api.await_call(sent_to(2601), timeout=30)

    reply = run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    failed_polls = [c for c in api.requests("getUpdates") if c.error_code == 502]
    assert len(failed_polls) == 3
    assert "/menu" in reply.params["text"]


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
