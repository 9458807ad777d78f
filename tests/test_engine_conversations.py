"""Conversations with the engine, over the real knowledge base and a real SQLite file."""

import pytest
from auxil.transcript import Conversation

from bot.storage import Database


def test_first_contact_offers_the_language_picker(engine):
    chat = Conversation(engine, language_hint="fr")
    chat.say("/start")
    assert "Massachusetts" in chat.text and "617-370-5023" in chat.text
    labels = [b.label for b in chat.buttons()]
    assert labels == ["English", "Português", "Español", "Kreyòl ayisyen"]


def test_returning_person_gets_the_menu_not_the_picker(engine):
    chat = Conversation(engine)
    chat.press_data("l:pt")
    chat.say("/start")
    assert "Olá" in chat.text
    assert "Conheça seus direitos" in [b.label for b in chat.buttons()]


@pytest.mark.parametrize("hint, question, lang, entry, words", [
    ("en", "ICE agents are knocking at my door, what do I do?", "en", "ice-at-home", "door"),
    ("pt-br", "os agentes da imigração estão batendo na minha porta o que eu faço", "pt", "ice-at-home", "porta"),
    ("es", "la migra está tocando mi puerta que hago", "es", "ice-at-home", "puerta"),
    ("en", "imigrasyon ap frape pot lakay mwen kisa pou m fe", "ht", "ice-at-home", "pòt"),
])
def test_a_question_per_language_is_answered_in_that_language(engine, hint, question, lang, entry, words):
    chat = Conversation(engine, language_hint=hint)
    response = chat.say(question)
    assert response.language == lang
    assert chat.outcome == "answer" and chat.entry == entry
    assert words in chat.text.lower()
    assert engine.knowledge.kb.entries[entry].text(lang).title in chat.text


def test_answers_to_legal_topics_carry_the_disclaimer_once(engine):
    chat = Conversation(engine)
    chat.say("what is the difference between a judicial warrant and an ICE warrant")
    assert chat.entry == "warrants"
    assert chat.text.count("not legal advice") == 1


def test_related_buttons_answer_in_the_language_they_were_shown_in(engine):
    chat = Conversation(engine, language_hint="en")   # never chose a language
    chat.say("la migra se llevó a mi esposo, cómo lo encuentro")
    assert chat.last.language == "es"
    related = [b for b in chat.buttons() if b.data.startswith("a:")]
    assert related, "an answer offers related topics"
    chat.press_data(related[0].data)
    assert chat.last.language == "es"


def test_ambiguous_question_gets_did_you_mean(engine):
    chat = Conversation(engine)
    chat.say("court")
    assert chat.outcome == "suggest"
    suggestions = chat.last.match.suggestions
    assert 1 <= len(suggestions) <= 3
    entry_buttons = [b for b in chat.buttons() if b.data.startswith("a:")]
    assert [b.data.split("@")[0][2:] for b in entry_buttons] == suggestions
    chat.press_data(entry_buttons[0].data)
    assert engine.knowledge.kb.entries[suggestions[0]].text("en").title in chat.text


def test_off_topic_gets_an_honest_fallback_with_the_emergency_line(engine):
    chat = Conversation(engine)
    chat.say("what is the best recipe for chocolate cake")
    assert chat.outcome == "none"
    assert "don't have an answer" in chat.text
    assert "617-370-5023" in chat.text and "911" in chat.text
    assert [b.data.split("@")[0] for b in chat.buttons()] == ["m", "a:emergency-contacts"]


@pytest.mark.parametrize("greeting, reply", [
    ("hello", "Hello!"), ("oi", "Olá"), ("Hola!", "Hola"), ("bonjou", "Bonjou"), ("sak pase", "Bonjou"),
])
def test_greetings_get_a_friendly_reply(engine, greeting, reply):
    chat = Conversation(engine)
    chat.say(greeting)
    assert reply in chat.text
    assert chat.last.match is None


@pytest.mark.parametrize("thanks, reply", [
    ("thanks!", "welcome"), ("obrigada", "De nada"), ("muchas gracias", "De nada"), ("mèsi anpil", "pwoblèm"),
])
def test_thanks_get_a_friendly_reply(engine, thanks, reply):
    chat = Conversation(engine)
    chat.say(thanks)
    assert reply in chat.text


def test_menu_browses_categories_then_topics(engine):
    chat = Conversation(engine)
    chat.say("/menu")
    assert [b.label for b in chat.buttons()][:2] == ["Know your rights", "Get help now"]
    chat.press("Get help now")
    assert chat.last.replies[0].replace is True
    labels = [b.label for b in chat.buttons()]
    assert "Emergency contacts" in " ".join(labels) or any("call" in l.lower() for l in labels)
    chat.press("Back")
    assert "Choose a topic" in chat.text


def test_help_lists_the_commands(engine):
    chat = Conversation(engine)
    chat.say("/help")
    for command in ("/menu", "/language", "/emergency", "/privacy"):
        assert command in chat.text


def test_emergency_and_privacy_commands(engine):
    chat = Conversation(engine)
    chat.say("/emergency")
    assert "617-370-5023" in chat.text
    chat.say("/privacy")
    assert "/forget" in chat.text


def test_unknown_command(engine):
    chat = Conversation(engine)
    chat.say("/frobnicate")
    assert "I don't know that command" in chat.text


@pytest.mark.parametrize("data", ["a:no-such-entry", "c:nothing", "zz", "", "l:fr", "a:" + "x" * 60,
                                  "m:extra", "a:ice-at-home@xx"])
def test_forged_or_stale_buttons_get_a_clear_answer(engine, data):
    chat = Conversation(engine)
    chat.press_data(data)
    if data == "a:ice-at-home@xx":
        assert "door" in chat.text.lower()      # a real entry: the unknown language is ignored
    else:
        assert "no longer valid" in chat.text


@pytest.mark.parametrize("text", ["", "   ", "😀🙏", "\u200b\u200b"])
def test_messages_without_words(engine, text):
    chat = Conversation(engine)
    chat.say(text)
    assert "only read words" in chat.text


def test_typing_a_language_name_switches_and_it_sticks_across_a_restart(knowledge, tmp_path):
    from bot.engine import Engine

    path = tmp_path / "bot.sqlite3"
    chat = Conversation(Engine(knowledge, Database(path)), language_hint="en")
    chat.say("Kreyòl")
    assert "kreyòl" in chat.text.lower()
    assert chat.last.language == "ht"
    chat.engine.db.close()

    chat = Conversation(Engine(knowledge, Database(path)), language_hint="en")
    chat.say("/menu")
    assert chat.last.language == "ht"
    assert "Konnen dwa ou" in [b.label for b in chat.buttons()]


def test_a_chosen_language_wins_and_another_is_offered(engine):
    chat = Conversation(engine)
    chat.say("español")
    chat.say("what do I do if ICE comes to my house")
    assert chat.last.language == "es"
    assert chat.entry == "ice-at-home"
    assert "puerta" in chat.text.lower()
    offer = chat.buttons()[-1]
    assert offer.data.startswith("l:en") and offer.label == "Answer in English"


def test_ask_previews_without_storing_anyone(engine):
    response = engine.ask("kijan pou m jwenn yon avoka gratis")
    assert response.language == "ht"
    assert response.match.entry == "legal-help"
    assert engine.db.get_user(0) is None


def test_very_long_message_is_answered(engine):
    chat = Conversation(engine)
    chat.say("ICE is at my door what do I do " + "please help " * 400)
    assert chat.last.replies and chat.last.language == "en"
