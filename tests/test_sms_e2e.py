"""End to end on SMS: `python main.py run` as its own process with the three TWILIO_ settings,
the real knowledge base and a real SQLite file; Twilio is the loopback stand-in (signed webhook
posts in, REST API calls out, its own STOP/START handling, segments counted on its side)."""

from __future__ import annotations

import sqlite3

import pytest
from auxil.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio, count_segments
from auxil.http_bot import ROOT, HttpBot

from bot.i18n import translate
from bot.knowledge import load_knowledge

PUBLIC = "https://bot.example.org"
MORE = "Reply MORE for the rest."


@pytest.fixture(scope="module")
def twilio():
    with FakeTwilio() as server:
        yield server
    assert not server.server_errors, server.server_errors


@pytest.fixture(scope="module")
def bot(twilio, tmp_path_factory):
    running = HttpBot(tmp_path_factory.mktemp("sms"), {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_BASE_URL": twilio.base_url, "BOT_PUBLIC_URL": PUBLIC, "TWILIO_RATE": "20"},
        ready_path="/sms/twilio")
    running.url = running.base + "/sms/twilio"
    yield running
    assert running.stop() == 0, running.log()
    log = running.log()
    assert not running.failures(), log
    for call in twilio.calls:                       # a phone number is never in a log line
        assert call.to not in log and call.to.lstrip("+") not in log
    assert AUTH_TOKEN not in log


@pytest.fixture(scope="module")
def kb():
    return load_knowledge(ROOT / "knowledge")[0]


def text(bot, twilio, number: str, body: str, timeout: float = 30):
    """Text the bot from `number`; the bot's answer (checked: at most 3 segments, as Twilio counts)."""
    start = len(twilio.calls)
    status, answer = twilio.text(bot.url, number, body, signed_url=PUBLIC + "/sms/twilio")
    assert status == 200 and "<Response" in answer
    sent = twilio.wait_for(lambda c: c.to == number, timeout=timeout, start=start)
    assert sent.ok, (sent.status, sent.code)
    assert sent.segments <= 3, (sent.segments, sent.encoding, sent.body)
    return sent


@pytest.mark.parametrize("number, question, lang", [
    ("+16175550101", "what do i do if ICE agents knock on my door", "en"),
    ("+5511987650001", "o que faço se a imigração bater na minha porta", "pt"),
    ("+5215550000001", "qué hago si la migra toca mi puerta", "es"),
    ("+50937000001", "kisa pou m fè si imigrasyon frape pòt lakay mwen", "ht"),
])
def test_a_question_in_each_language_then_more_until_the_end(bot, twilio, kb, number, question, lang):
    first = text(bot, twilio, number, question)
    tr = kb.entries["ice-at-home"].text(lang)
    assert tr.title in first.body
    assert first.body.endswith(translate(lang, MORE))
    assert first.segments == 3 or first.encoding == "UCS-2" or lang == "en"   # pages are full
    assert "<b>" not in first.body and "🚨" not in first.body
    # MORE (in the person's language) sends the rest, page after page, each in 3 segments
    word = {"en": "MORE", "pt": "mais", "es": "Más", "ht": "plis"}[lang]
    bodies = [first.body]
    for _ in range(30):
        page = text(bot, twilio, number, word)
        bodies.append(page.body)
        if not page.body.endswith(translate(lang, MORE)):
            break
    else:
        pytest.fail("MORE never reached the end")
    everything = "\n".join(bodies)
    assert translate(lang, "Did this help?") in everything
    assert "1 " + translate(lang, "Yes") in everything         # the choices, numbered
    # and after the end, MORE says so
    assert text(bot, twilio, number, word).body == translate(lang, "That was all. Text your question, or MENU for the topics.")


def test_a_numbered_choice_picks_it(bot, twilio, kb):
    number = "+16175550102"
    menu = text(bot, twilio, number, "menu")
    assert "1 Know your rights" in menu.body
    topics = text(bot, twilio, number, "1")
    rights = sorted(e.text("en").title for e in kb.in_category("rights"))
    assert f"1 {rights[0]}" in topics.body
    answer = text(bot, twilio, number, "1")
    assert answer.body.startswith(rights[0])
    # a number that is not a choice is read as text, not an error
    assert text(bot, twilio, number, "99").ok


def test_stop_then_start_agree_with_twilio(bot, twilio):
    number = "+16175550103"
    text(bot, twilio, number, "thank you")
    start = len(twilio.calls)
    assert twilio.text(bot.url, number, "STOP", signed_url=PUBLIC + "/sms/twilio")[0] == 200
    twilio.wait_quiet(1.5)
    assert [c for c in twilio.calls[start:] if c.to == number] == []   # Twilio answered STOP itself
    assert (number, "You have successfully been unsubscribed.") in twilio.auto_replies
    # a text after STOP: Twilio refuses to deliver (21610); the bot takes it as opted out, no retry
    assert twilio.text(bot.url, number, "thank you", signed_url=PUBLIC + "/sms/twilio")[0] == 200
    twilio.wait_quiet(1.5)
    assert [c.code for c in twilio.calls[start:] if c.to == number] == [21610]
    assert twilio.text(bot.url, number, "START", signed_url=PUBLIC + "/sms/twilio")[0] == 200
    twilio.wait_quiet(1.5)
    assert [c.code for c in twilio.calls[start:] if c.to == number] == [21610]   # Twilio answered START
    assert text(bot, twilio, number, "thank you").ok                   # answering again
    assert "Twilio 21610" in bot.log()


def test_stop_words_in_other_languages_are_confirmed_in_them(bot, twilio):
    for number, word, lang in [("+5511987650010", "parar", "pt"), ("+5215550000010", "basta", "es"),
                               ("+50937000010", "sispann", "ht")]:
        done = text(bot, twilio, number, word)
        assert done.body == translate(lang, "You will get no more texts from this number. To start again, reply START.")


def test_forged_and_missing_signatures_are_refused_and_nothing_is_answered(bot, twilio):
    number = "+16175550104"
    params = twilio.params(number, "what do i do if ICE agents knock on my door")
    start = len(twilio.calls)
    assert twilio.post(bot.url, params, signature=None)[0] == 401
    assert twilio.post(bot.url, params, signature="bm90IGEgc2lnbmF0dXJl")[0] == 403
    forged = FakeTwilio(auth_token="not-the-auth-token")
    assert forged.post(bot.url, params, signed_url=PUBLIC + "/sms/twilio")[0] == 403
    # signed for the address the bot sees, not the public one Twilio calls: refused too
    assert twilio.post(bot.url, params)[0] == 403
    params_changed = dict(params, Body="something else")
    signature = FakeTwilio().params  # noqa: F841 - the same token, but over other parameters:
    from auxil.fake_twilio import sign
    assert twilio.post(bot.url, params_changed, signature=sign(AUTH_TOKEN, PUBLIC + "/sms/twilio", params))[0] == 403
    twilio.wait_quiet(1.0)
    assert [c for c in twilio.calls[start:] if c.to == number] == []
    log = bot.log()
    assert "refused an SMS webhook post: wrong signature" in log and "knock" not in log
    # the same message, signed as Twilio signs it, is answered: nothing was lost
    assert twilio.post(bot.url, params, signed_url=PUBLIC + "/sms/twilio")[0] == 200
    assert twilio.wait_for(lambda c: c.to == number, start=start).ok


def test_a_1600_character_message_is_answered_in_3_segments(bot, twilio):
    number = "+5511987650011"
    long = ("Boa tarde, eu moro em Framingham com a minha família e estou com muito medo. " * 30)[:1600]
    assert len(long) == 1600
    answer = text(bot, twilio, number, long)
    assert answer.segments <= 3


def test_a_replayed_message_sid_is_answered_once(bot, twilio):
    number = "+16175550105"
    params = twilio.params(number, "thank you")
    start = len(twilio.calls)
    for _ in range(2):
        assert twilio.post(bot.url, params, signed_url=PUBLIC + "/sms/twilio")[0] == 200
    twilio.wait_quiet(1.0)
    assert len([c for c in twilio.calls[start:] if c.to == number]) == 1


def test_a_provider_error_is_retried_then_the_bot_goes_on(bot, twilio):
    number = "+16175550106"
    start = len(twilio.calls)
    twilio.fail_next(503, 20500)          # a temporary error: retried
    assert twilio.text(bot.url, number, "thank you", signed_url=PUBLIC + "/sms/twilio")[0] == 200
    assert twilio.wait_for(lambda c: c.to == number and c.ok, start=start).ok
    assert [c.status for c in twilio.calls[start:] if c.to == number] == [503, 201]
    twilio.fail_next(400, 21211)          # refused for good: dropped, and the bot keeps answering
    start = len(twilio.calls)
    assert twilio.text(bot.url, number, "thank you", signed_url=PUBLIC + "/sms/twilio")[0] == 200
    twilio.wait_quiet(1.5)
    assert [c.status for c in twilio.calls[start:] if c.to == number] == [400]
    assert text(bot, twilio, number, "thank you").ok


def test_forget_deletes_the_phone_number(bot, twilio):
    number = "+5511987650012"
    text(bot, twilio, number, "/language")
    conn = sqlite3.connect(bot.database)
    try:
        assert conn.execute("SELECT COUNT(*) FROM people WHERE channel = 'sms' AND address = ?",
                            (number,)).fetchone()[0] == 1
    finally:
        conn.close()
    confirm = text(bot, twilio, number, "/forget")
    assert "1 " in confirm.body
    done = text(bot, twilio, number, "1")
    assert "phone number" in done.body or "telefone" in done.body
    conn = sqlite3.connect(bot.database)
    try:
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    assert number not in dump and number.lstrip("+") not in dump


def test_segment_counting():
    assert count_segments("a" * 160) == ("GSM-7", 1)
    assert count_segments("a" * 161) == ("GSM-7", 2)
    assert count_segments("€" * 80) == ("GSM-7", 1)
    assert count_segments("ç" * 70) == ("UCS-2", 1)
    assert count_segments("ç" * 71) == ("UCS-2", 2)
    assert count_segments("ç" * 201) == ("UCS-2", 3)
    assert count_segments("ç" * 202) == ("UCS-2", 4)
    from bot.channels.sms.render import pages, segments
    for sample in ("a" * 1000, "ação " * 300, "👍" * 200):
        assert segments(sample) == count_segments(sample)[1]
        for page in pages(sample, more="Reply MORE for the rest."):
            assert count_segments(page)[1] <= 3
