"""A person is (channel, id): the migration keeps every Telegram person, and everything keyed by
a person (roles, subscriptions, /forget, retention, broadcast audiences) works per channel."""

from __future__ import annotations

import datetime as dt
import sqlite3

from bot import storage
from bot.engine import Engine, Incoming
from bot.storage import Database


def _old_database(path):
    """A database as the bot before issue 12 left it (schema 6), with people in it."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, sql in enumerate(storage.MIGRATIONS[:6], start=1):
        conn.executescript("BEGIN;" + sql + f"INSERT INTO schema_version VALUES ({version});COMMIT;")
    now = "2025-01-01T00:00:00+00:00"
    conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?)",
                     [(1001, "pt", now, now), (1002, None, now, now), (0, "en", now, now)])
    conn.execute("INSERT INTO subscriptions (chat_id, language, topics, active, created_at, updated_at) "
                 "VALUES (1001, 'pt', 'alerts,news', 1, ?, ?)", (now, now))
    conn.execute("INSERT INTO roles VALUES (1003, 'organizer', ?)", (now,))
    conn.commit()
    conn.close()


def test_migration_keeps_every_telegram_user_subscription_and_role(tmp_path):
    path = tmp_path / "old.sqlite3"
    _old_database(path)
    db = Database(path)
    try:
        assert db.schema_version == len(storage.MIGRATIONS)
        assert db.get_user(1001).language == "pt" and db.get_user(1002) is not None
        assert db.subscription(1001).topics == {"alerts", "news"}
        assert db.roles_of(1003) == {"organizer"}
        assert db.person("telegram", 1001) == 1001 and db.person("telegram", "1003") == 1003
        assert db.address_of(1001) == ("telegram", "1001")
        assert db.channel_of(0) == "terminal"
        assert db.audience("alerts") == {"pt": 1}
    finally:
        db.close()


def test_a_whatsapp_person_is_another_person_with_their_own_data(db):
    phone = "5511987654321"
    wa = db.person("whatsapp", phone)
    assert wa < 0 and db.person("whatsapp", phone) == wa
    assert db.person("whatsapp", "50937000000") != wa
    assert db.address_of(wa) == ("whatsapp", phone) and db.channel_of(wa) == "whatsapp"
    db.touch_user(wa)
    db.set_language(wa, "pt")
    db.grant(wa, "editor")
    db.set_subscription(wa, {"alerts"}, "pt")
    tg = db.person("telegram", 5511987654321 % 10 ** 6)
    db.set_subscription(tg, {"alerts"}, "en")
    # announcements go out on both channels, each subscriber on their own
    assert db.audience("alerts") == {"en": 1, "pt": 1}
    assert db.audience_by_channel("alerts") == {("telegram", "en"): 1, ("whatsapp", "pt"): 1}
    assert db.roles_of(wa) == {"editor"} and db.roles_of(tg) == set()
    db.forget_user(wa)
    assert db.address_of(wa) is None and db.get_user(wa) is None and db.roles_of(wa) == set()
    assert db.subscription(wa) is None and db.subscription(tg) is not None
    # the phone number is nowhere in the file any more
    dump = "\n".join(db._conn.iterdump())
    assert phone not in dump
    # a new key, not the forgotten one
    assert db.person("whatsapp", phone) not in (wa,)


def test_retention_deletes_inactive_people_of_every_channel(db):
    wa = db.person("whatsapp", "5511900000000")
    db.touch_user(wa)
    db._conn.execute("UPDATE users SET last_seen = '2000-01-01T00:00:00+00:00'")
    db._conn.commit()
    counts = db.purge_expired(dt.timedelta(days=365))
    assert counts["inactive_people"] == 1 and db.address_of(wa) is None


def test_a_webhook_message_id_is_handled_once_and_never_stored(db):
    wamid = "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFjNFQjBDMEZFMzA0QjI2QjY2RTZFNUEA"
    assert db.claim_message("whatsapp", wamid) is True
    assert db.claim_message("whatsapp", wamid) is False
    db.release_message("whatsapp", wamid)
    assert db.claim_message("whatsapp", wamid) is True
    assert wamid not in "\n".join(db._conn.iterdump())


def test_engine_roles_and_forget_work_per_channel_person(knowledge, db):
    engine = Engine(knowledge, db)
    wa = db.person("whatsapp", "5511987650000")
    db.grant(wa, "editor")
    reply = engine.handle(Incoming(wa, text="/report", channel="whatsapp")).replies[0]
    assert "Questions without an answer" in reply.text
    engine.handle(Incoming(wa, button="f:yes", channel="whatsapp"))
    assert db.address_of(wa) is None and db.roles_of(wa) == set()


def test_staff_roles_for_whatsapp_and_sms_people(knowledge, tmp_path):
    """/grant whatsapp:NUMBER and roles grant sms:NUMBER name the person the channel knows; the
    reply says the id as typed and the number never reaches the log."""
    from auxil.cli import run_main

    path = tmp_path / "bot.sqlite3"
    db = Database(path)
    engine = Engine(knowledge, db, admin_ids=frozenset({42}))
    editor = db.person("whatsapp", "5511987654321")          # as WhatsApp's wa_id arrives
    texter = db.person("sms", "+16175550123")                 # as Twilio's From arrives
    reply = engine.handle(Incoming(42, text="/grant whatsapp:+55 11 98765-4321 editor")).replies[0].text
    assert "whatsapp:+55" in reply and db.roles_of(editor) == {"editor"}
    report = engine.handle(Incoming(editor, text="/report", channel="whatsapp")).replies[0].text
    assert "Questions without an answer" in report                    # the role works on WhatsApp
    assert engine.handle(Incoming(42, text="/grant whatsapp:12 editor")).replies[0].text.startswith("Write it")
    db.close()
    result = run_main("roles", "grant", "sms:+1 (617) 555-0123", "organizer", env={"BOT_DATABASE": str(path)})
    assert result.returncode == 0 and "granted" in result.stdout, result.stderr
    listed = run_main("roles", "list", env={"BOT_DATABASE": str(path)})
    assert "617" not in listed.stdout and "organizer" in listed.stdout
    db = Database(path)
    assert db.roles_of(texter) == {"organizer"}
    db.close()
