"""Subscriptions: /subscribe and /unsubscribe with topic buttons, stop words in each language,
people who blocked the bot and come back, /forget and retention."""

import datetime as dt
import sqlite3

import pytest
from auxil.bot_runner import buttons_of, run_bot
from auxil.transcript import Conversation

from bot.engine import COMMANDS

# per language: Telegram's language code, a stop word, and words of the replies
LANGS = {
    "en": ("en", "STOP", "You get these announcements", "Urgent alerts",
           "you won't get any more announcements"),
    "pt": ("pt-br", "Parar!", "Você recebe estes avisos", "Alertas urgentes",
           "você não vai receber mais avisos"),
    "es": ("es", "pare", "Usted recibe estos avisos", "Alertas urgentes",
           "ya no recibirá más avisos"),
    "ht": ("ht", "Kanpe", "Ou resevwa anons sa yo", "Alèt ijan", "ou p ap resevwa anons ankò"),
}


@pytest.mark.parametrize("lang", sorted(LANGS))
def test_subscribe_and_stop_in_each_language(engine, lang):
    hint, stop_word, status, alerts, stopped = LANGS[lang]
    person = Conversation(engine, user_id=3100, language_hint=hint)
    person.say("/subscribe")
    labels = [b.label for b in person.buttons()]
    assert labels[0] == "⬜ 🚨 " + alerts and labels[1].startswith("⬜ 📣 ") and len(labels) == 3
    person.press(alerts)
    assert status in person.text and alerts in person.text
    assert person.last.replies[0].replace                      # the menu is edited in place
    assert person.button(alerts).label.startswith("✅")
    sub = engine.db.subscription(3100)
    assert (sub.topics, sub.language, sub.active) == ({"alerts"}, lang, True)
    person.say(stop_word)
    assert stopped in person.text
    assert engine.db.subscription(3100) is None                 # nothing kept once unsubscribed


def test_unsubscribe_one_topic_then_everything(engine):
    person = Conversation(engine, user_id=3200, language_hint="en")
    person.say("/subscribe")
    person.press("Urgent alerts")
    person.press("Campaign news")
    assert engine.db.subscription(3200).topics == {"alerts", "news"}
    person.say("/unsubscribe")
    assert "Which announcements do you want to stop?" in person.text
    assert [b.label for b in person.buttons()] == ["Stop: Urgent alerts", "Stop: Campaign news and events",
                                                   "Stop all", "Keep them"]
    person.press("Stop: Campaign news")
    assert engine.db.subscription(3200).topics == {"alerts"}
    person.say("/unsubscribe")
    assert [b.label for b in person.buttons()] == ["Stop: Urgent alerts", "Keep them"]
    person.press("Keep them")
    assert "nothing changed" in person.text and engine.db.subscription(3200).topics == {"alerts"}
    person.say("/unsubscribe")
    person.press("Stop: Urgent alerts")
    assert engine.db.subscription(3200) is None
    person.say("/unsubscribe")
    assert "You don't get any announcements. To get them, send /subscribe." == person.text


def test_stop_words_only_as_a_whole_message(engine):
    person = Conversation(engine, user_id=3300, language_hint="pt-br")
    person.say("/subscribe")
    person.press("Alertas urgentes")
    person.say("como eu paro a deportação do meu marido")      # a question, not a stop word
    assert engine.db.subscription(3300) is not None
    person.say("stop")                                          # English word, Portuguese speaker
    assert "Pronto: você não vai receber mais avisos" in person.text
    person.say("stop")
    assert "Você não recebe nenhum aviso" in person.text       # says so, changes nothing


def test_announcements_follow_the_language_the_person_chose(engine):
    person = Conversation(engine, user_id=3400, language_hint="pt-br")
    person.say("/subscribe")
    person.press("Alertas urgentes")
    assert engine.db.audience("alerts") == {"pt": 1}
    person.say("Kreyòl")                                        # chooses a language later
    assert engine.db.audience("alerts") == {"ht": 1}
    person.say("/subscribe")
    assert "Ou resevwa anons sa yo, an Kreyòl ayisyen" in person.text


def test_someone_who_blocked_the_bot_is_asked_once_whether_to_resume(engine):
    person = Conversation(engine, user_id=3500, language_hint="es")
    person.say("/subscribe")
    person.press("Alertas urgentes")
    engine.db.mark_unreachable(3500)                            # Telegram answered 403 to a broadcast
    assert engine.db.audience("alerts") == {}
    person.say("hola")
    assert len(person.last.replies) == 2
    assert "Hola" in person.text                                # answered as usual first
    assert "Telegram nos dijo que el bot no podía comunicarse con usted" in person.text
    resume = person.button("Sí, quiero recibirlos")
    person.say("hola")
    assert len(person.last.replies) == 1                        # asked once only
    person.press_data(resume.data)
    assert engine.db.subscription(3500).active and engine.db.audience("alerts") == {"es": 1}

    other = Conversation(engine, user_id=3501, language_hint="ht")
    other.say("/subscribe")
    other.press("Alèt ijan")
    engine.db.mark_unreachable(3501)
    other.say("/start")
    other.press("Non, mèsi")
    assert engine.db.subscription(3501) is None
    assert "ou p ap resevwa anons ankò" in other.text


def test_a_paused_subscription_shows_it_and_a_topic_press_resumes(engine):
    person = Conversation(engine, user_id=3550, language_hint="en")
    person.say("/subscribe")
    person.press("Urgent alerts")
    engine.db.mark_unreachable(3550)
    person.say("/subscribe")                                    # about subscriptions already: no question
    assert len(person.last.replies) == 1 and "Paused" in person.text
    person.press("Urgent alerts")
    assert engine.db.subscription(3550).active


def rows_mentioning(path, value):
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [(t, row) for t in tables for row in conn.execute(f'SELECT * FROM "{t}"') if value in row]


def test_forget_deletes_the_subscription_and_delivery_records(engine, tmp_path):
    person = Conversation(engine, user_id=3600, language_hint="en")
    person.say("/subscribe")
    person.press("Urgent alerts")
    broadcast = engine.db.create_broadcast(topic="alerts", texts={"en": "x"}, default_language="en",
                                           composed_by="cli:test", lease_owner="me", lease_until=9e12)
    engine.db.start_broadcast(broadcast, "me")
    assert rows_mentioning(tmp_path / "bot.sqlite3", 3600)
    person.say("/forget")
    person.press("Yes")
    assert rows_mentioning(tmp_path / "bot.sqlite3", 3600) == []


def test_retention_keeps_people_who_are_subscribed(db):
    for person in (3701, 3702, 3703):
        db.touch_user(person)
    db.set_subscription(3701, ["alerts"], "en")
    db.set_subscription(3702, ["alerts"], "en")
    db.mark_unreachable(3702)                                   # blocked the bot: retention applies
    with db._conn:
        db._conn.execute("UPDATE users SET last_seen = '2000-01-01T00:00:00+00:00'")
    counts = db.purge_expired(dt.timedelta(days=365))
    assert counts["inactive_people"] == 2
    assert db.get_user(3701) and db.subscription(3701)
    assert db.get_user(3702) is None and db.subscription(3702) is None and db.get_user(3703) is None


def test_subscribe_is_in_help_and_in_the_telegram_menu(engine):
    assert ("subscribe" in dict(COMMANDS)) and ("unsubscribe" in dict(COMMANDS))
    help_text = Conversation(engine, user_id=3800, language_hint="ht").say("/help").replies[0].text
    assert "/subscribe — Resevwa alèt ijan ak nouvèl kanpay la" in help_text


def test_subscribing_end_to_end_over_telegram(api, knowledge, tmp_path):
    def sent_to(chat):
        return lambda c: c.method == "sendMessage" and c.params.get("chat_id") == chat and c.ok

    async def scenario():
        api.push_message(3900, "/subscribe", language_code="es")
        menu = await api.await_call(sent_to(3900))
        alerts = next(b for b in buttons_of(menu) if "Alertas urgentes" in b["text"])
        start = len(api.calls)
        api.push_callback(3900, alerts["callback_data"], message_id=menu.result["message_id"], language_code="es")
        edit = await api.await_call("editMessageText", start=start)
        start = len(api.calls)
        api.push_message(3900, "PARE", language_code="es")
        stopped = await api.await_call(sent_to(3900), start=start)
        return menu, edit, stopped

    menu, edit, stopped = run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    assert "Toque un tema para activarlo o desactivarlo." in menu.params["text"]
    assert "✅ 🚨 Alertas urgentes" in [b["text"] for b in buttons_of(edit)]
    assert "Usted recibe estos avisos, en Español" in edit.params["text"]
    assert stopped.params["text"].startswith("Listo: ya no recibirá más avisos")
