"""Language: detection, Telegram codes, names, and the order in which they decide."""

import pytest

from bot.languages import from_telegram_code, language_named


@pytest.mark.parametrize("code, lang", [
    ("pt-br", "pt"), ("pt-BR", "pt"), ("pt", "pt"), ("es-419", "es"), ("es", "es"), ("en-US", "en"),
    ("ht", "ht"), ("fr", None), ("", None), (None, None),
])
def test_telegram_codes(code, lang):
    assert from_telegram_code(code) == lang


@pytest.mark.parametrize("text, lang", [
    ("Português", "pt"), ("portugues", "pt"), ("ESPAÑOL", "es"), ("espanol", "es"), ("Kreyòl", "ht"),
    ("kreyol ayisyen", "ht"), ("creole", "ht"), ("English", "en"), ("ingles", "en"),
    ("en español", "es"), ("I speak english and need help", None),
])
def test_language_names(text, lang):
    assert language_named(text) == lang


@pytest.mark.parametrize("text, lang", [
    ("what do I do if immigration comes to my house", "en"),
    ("o que eu faço se a imigração vier na minha casa", "pt"),
    ("vc sabe onde consigo um advogado", "pt"),
    ("qué hago si la migra viene a mi casa", "es"),
    ("donde consigo un abogado gratis", "es"),
    ("kisa pou m fè si imigrasyon vin lakay mwen", "ht"),
    ("m bezwen yon avoka", "ht"),
    ("eske yo ka arete m nan travay", "ht"),
])
def test_detection(knowledge, text, lang):
    assert knowledge.matcher.detector.detect(text).language == lang


@pytest.mark.parametrize("text", ["ok", "???", "123"])
def test_detection_says_so_when_unsure(knowledge, text):
    assert knowledge.matcher.detector.detect(text).language is None


def test_order_stored_then_detected_then_hint_then_english(engine):
    from bot.engine import Incoming

    # no stored choice, nothing detectable: the Telegram hint decides
    assert engine.handle(Incoming(1, text="ok", language_hint="pt-br")).language == "pt"
    # nothing at all: English
    assert engine.handle(Incoming(2, text="ok")).language == "en"
    # the message's own language beats the hint
    assert engine.handle(Incoming(3, text="necesito un abogado", language_hint="pt-br")).language == "es"
    # an explicit choice beats the message's language
    engine.db.set_language(4, "ht")
    assert engine.handle(Incoming(4, text="necesito un abogado", language_hint="pt-br")).language == "ht"
