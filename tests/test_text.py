"""Normalisation: what people type on phones meets the knowledge base on the same ground."""

import pytest

from bot.text import expand_abbreviations, is_blank, normalize


@pytest.mark.parametrize("raw, expected", [
    ("  Siiiim, a IMIGRAÇÃO tá na porta!!! ", "sim a imigracao ta na porta"),
    ("¿Qué hago si la MIGRA viene?", "que hago si la migra viene"),
    ("Kisa pou m fè si imigrasyon vin lakay mwen?", "kisa pou m fe si imigrasyon vin lakay mwen"),
    ("ICE   at\tmy\n\ndoor", "ice at my door"),
    ("hel\u200blo wor\u202eld", "hello world"),          # zero-width and bidi controls vanish
    ("what's up", "whats up"),
    ("noooo!!!", "no"),
])
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_double_letters_are_kept():
    assert normalize("Good free offer") == "good free offer"


@pytest.mark.parametrize("lang, words, expected", [
    ("pt", ["vc", "sabe", "pq"], ["voce", "sabe", "porque"]),
    ("es", ["xq", "no", "puedo"], ["porque", "no", "puedo"]),
    ("ht", ["m", "pa", "konnen", "sa", "pou", "m", "fe"], ["mwen", "pa", "konnen", "sa", "pou", "mwen", "fe"]),
    ("en", ["can", "u", "help"], ["can", "you", "help"]),
])
def test_abbreviations_are_per_language(lang, words, expected):
    assert expand_abbreviations(words, lang) == expected


@pytest.mark.parametrize("text", ["", "   ", "😀😀", "!!!", None, "\u200b"])
def test_blank(text):
    assert is_blank(text)


def test_not_blank():
    assert not is_blank("oi")


def test_every_format_character_is_removed():
    import sys
    import unicodedata

    format_chars = "".join(chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf")
    assert normalize("a" + format_chars + "b") == "ab"
