"""End to end: the real python-telegram-bot Application, over HTTP, against the stand-in Bot API
on 127.0.0.1, with the real knowledge base and a real SQLite file."""

import sqlite3

import pytest
from auxil.bot_runner import (assert_answer, assert_fallback, button_data, buttons_of, is_help_reply, run_bot,
                              sent_to)




def test_first_contact_shows_welcome_and_language_picker(api, knowledge, tmp_path):
    async def scenario():
        api.push_message(501, "/start", language_code="fr")
        picker = await api.await_call(lambda c: sent_to(501)(c) and len(buttons_of(c)) == 4)
        return picker

    picker = run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    texts = api.sent_texts(501)
    assert "617-370-5023" in texts[0] and "Massachusetts" in texts[0]
    assert [b["text"] for b in buttons_of(picker)] == ["English", "Português", "Español", "Kreyòl ayisyen"]
    assert all(c.params.get("parse_mode") == "HTML" for c in api.requests("sendMessage"))
    # the command menu is registered in each language
    pt_commands = {c["command"]: c["description"] for c in api.commands(language_code="pt")}
    ht_commands = {c["command"]: c["description"] for c in api.commands(language_code="ht")}
    assert pt_commands["language"] == "Mudar de idioma"
    assert ht_commands["language"] == "Chanje lang"


@pytest.mark.parametrize("user, hint, question, title_lang, expected_word", [
    (601, "en", "what do i do if ICE agents knock on my door", "en", "door"),
    (602, "pt-br", "o que faço se a imigração bater na minha porta", "pt", "porta"),
    (603, "es", "qué hago si la migra toca mi puerta", "es", "puerta"),
    (604, "fr", "kisa pou m fè si imigrasyon frape pòt lakay mwen", "ht", "pòt"),
])
def test_a_question_in_each_language_is_answered_in_it(api, knowledge, tmp_path, user, hint, question,
                                                        title_lang, expected_word):
    async def scenario():
        api.push_message(user, question, language_code=hint)
        return await api.await_call(sent_to(user))

    answer = run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    assert_answer(answer, knowledge.kb, "ice-at-home", title_lang)
    assert expected_word in answer.params["text"].lower()


def test_button_press_answers_and_menu_navigation_edits_in_place(api, knowledge, tmp_path):
    async def scenario():
        api.push_message(701, "/menu", language_code="en")
        menu = await api.await_call(sent_to(701))
        rights = next(b for b in buttons_of(menu) if b["text"] == "Know your rights")
        start = len(api.calls)
        api.push_callback(701, rights["callback_data"], message_id=menu.result["message_id"])
        edit = await api.await_call("editMessageText", start=start)
        warrant_button = next(b for b in buttons_of(edit) if b["callback_data"] == "a:warrants@en")
        start = len(api.calls)
        api.push_callback(701, warrant_button["callback_data"], message_id=menu.result["message_id"])
        answer = await api.await_call(sent_to(701), start=start)
        return edit, answer

    edit, answer = run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    rights = sorted(knowledge.kb.in_category("rights"), key=lambda e: e.text("en").title)
    assert edit.params["text"] == "<b>Know your rights</b>"
    assert button_data(edit) == [f"a:{e.id}@en" for e in rights] + ["m@en"]    # the category, then « Back
    assert len(api.requests("answerCallbackQuery")) == 2
    assert_answer(answer, knowledge.kb, "warrants", "en")


def test_did_you_mean_then_pick_a_suggestion(api, knowledge, tmp_path):
    async def scenario():
        api.push_message(801, "court", language_code="en")
        suggestion = await api.await_call(sent_to(801))
        first = buttons_of(suggestion)[0]
        start = len(api.calls)
        api.push_callback(801, first["callback_data"], message_id=suggestion.result["message_id"])
        answer = await api.await_call(sent_to(801), start=start)
        return suggestion, first, answer

    suggestion, first, answer = run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    kb = knowledge.kb
    assert suggestion.params["text"] == "I am not sure I understood. Did you mean one of these?"
    *topics, menu = button_data(suggestion)
    suggested = [data.removeprefix("a:").removesuffix("@en") for data in topics]
    assert menu == "m@en" and 1 <= len(suggested) <= 3 and all(data.startswith("a:") for data in topics)
    assert {"court-hearing", "arrest-at-court"} & set(suggested)          # "court": the court entries
    assert [b["text"] for b in buttons_of(suggestion)][:-1] == [kb.entries[e].text("en").title for e in suggested]
    assert_answer(answer, kb, suggested[0], "en")                         # pressing one answers it


def test_off_topic_question_gets_the_fallback(api, knowledge, tmp_path):
    async def scenario():
        api.push_message(901, "who won the football game yesterday", language_code="en")
        return await api.await_call(sent_to(901))

    reply = run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    assert_fallback(reply, "en")


def test_language_switch_sticks_across_a_restart(api, knowledge, tmp_path):
    database = tmp_path / "bot.sqlite3"

    async def choose():
        api.push_message(1001, "Kreyòl", language_code="en")
        return await api.await_call(sent_to(1001))

    confirmation = run_bot(api, knowledge, database, choose)
    assert "kreyòl" in confirmation.params["text"].lower()
    assert button_data(confirmation) and all(d.startswith("c:") and d.endswith("@ht") for d in button_data(confirmation))

    async def after_restart():
        start = len(api.calls)
        api.push_message(1001, "/menu", language_code="en")
        return await api.await_call(sent_to(1001), start=start)

    menu = run_bot(api, knowledge, database, after_restart)
    assert menu.params["text"] == "Chwazi yon sijè:"
    assert button_data(menu) == button_data(confirmation)                  # the categories, in Kreyòl


def test_a_sticker_gets_a_friendly_answer_in_the_persons_language(api, knowledge, tmp_path):
    async def scenario():
        api.push_update({"message": {
            "message_id": 1, "date": 1_700_000_000,
            "chat": {"id": 1101, "type": "private"},
            "from": {"id": 1101, "is_bot": False, "first_name": "A", "language_code": "es"},
            "sticker": {"file_id": "s1", "file_unique_id": "u1", "type": "regular", "width": 512,
                        "height": 512, "is_animated": False, "is_video": False}}})
        return await api.await_call(sent_to(1101))

    reply = run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    assert reply.params["text"] == "Solo puedo leer texto. Escriba su pregunta, o elija un tema."
    assert button_data(reply) == ["m@es"]


def test_429_is_waited_out_and_403_does_not_stop_the_bot(api, knowledge, tmp_path):
    async def scenario():
        api.fail_next("sendMessage", error_code=429, retry_after=1, chat_id=1201)
        api.push_message(1201, "/help", language_code="en")
        delivered = await api.await_call(sent_to(1201), timeout=15)
        api.block_chat(1202)
        api.push_message(1202, "/help", language_code="en")
        await api.await_call(lambda c: c.method == "sendMessage" and c.error_code == 403)
        api.push_message(1203, "/help", language_code="en")
        still_serving = await api.await_call(sent_to(1203))
        return delivered, still_serving

    delivered, still_serving = run_bot(api, knowledge, tmp_path / "bot.sqlite3", scenario)
    attempts = [c for c in api.requests("sendMessage") if c.params.get("chat_id") == 1201]
    assert [c.error_code for c in attempts][:2] == [429, None]
    assert attempts[1].time - attempts[0].time >= 0.9          # waited as Telegram asked
    assert is_help_reply(delivered) and is_help_reply(still_serving)


def test_a_reply_longer_than_telegrams_limit_goes_in_parts(api, knowledge, tmp_path, monkeypatch):
    """No reply in the knowledge base is this long (answers stop at 3,500 characters), so the
    engine is made to give one: the running bot sends it in parts of at most 4,096 characters,
    cut at line breaks, in order, the buttons under the last part only, and remembers every
    part's message id (so that /forget can delete them)."""
    from bot.engine import Button, Engine, Reply, Response

    text = "\n".join(f"<b>Line {i}</b> " + "palavra " * 40 for i in range(40))
    menu = [[Button("☰ Menu", "m@pt")]]
    handle = Engine.handle
    monkeypatch.setattr(Engine, "handle", lambda self, incoming: Response([Reply(text, menu)], "pt")
                        if incoming.user_id == 1301 else handle(self, incoming))
    database = tmp_path / "bot.sqlite3"

    async def scenario():
        api.push_message(1301, "conte tudo", language_code="pt-br")
        await api.await_call(lambda c: sent_to(1301)(c) and c.params.get("reply_markup"))
        api.push_message(1302, "/help", language_code="en")          # after it: the parts are all out
        await api.await_call(sent_to(1302))

    run_bot(api, knowledge, database, scenario)
    parts = [c for c in api.requests("sendMessage") if c.params["chat_id"] == 1301]
    assert len(parts) >= 3 and all(c.ok for c in parts)
    assert all(len(c.params["text"]) <= 4096 for c in parts)
    assert "\n".join(c.params["text"] for c in parts) == text             # nothing lost, nothing cut mid-line
    assert [bool(buttons_of(c)) for c in parts] == [False] * (len(parts) - 1) + [True]
    assert button_data(parts[-1]) == ["m@pt"]
    with sqlite3.connect(database) as conn:
        remembered = {r[0] for r in conn.execute("SELECT message_id FROM recent_messages WHERE chat_id = 1301")}
    assert {c.result["message_id"] for c in parts} <= remembered
