"""UI strings: every catalog complete, compiled and consistent; the language is per context."""

import asyncio
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from bot.i18n import LOCALE_DIR, _, load_catalogs, translate, use_language
from bot.languages import LANGUAGES

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def catalog(lang):
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po", "rb") as fp:
        return read_po(fp, locale=lang)


def source_messages():
    found = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
            ROOT / "bot", method_map=[("**.py", "python")],
            keywords={"_": None, "N_": None, "gettext": None, "translate": (2,), "ngettext": (1, 2),
                      "_plural": (1, 2)}):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_string_in_the_code_is_in_the_template():
    with open(LOCALE_DIR / "messages.pot", "rb") as fp:
        template = {_forms(m.id)[0] for m in read_po(fp) if m.id}
    missing = source_messages() - template
    assert not missing, f"run pybabel extract/update: {sorted(missing)}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalog_is_complete_and_consistent(lang):
    expected = source_messages()
    cat = catalog(lang)
    ids = {_forms(m.id)[0] for m in cat if m.id}
    assert expected <= ids, f"{lang}: missing {sorted(expected - ids)}"
    for message in cat:
        if not message.id:
            continue
        ids, strings = _forms(message.id), _forms(message.string)   # plural forms: every one
        assert all(strings), f"{lang}: untranslated {message.id!r}"
        assert "fuzzy" not in message.flags, f"{lang}: fuzzy {message.id!r}"
        for form in strings:
            assert set(PLACEHOLDER.findall(ids[0])) == set(PLACEHOLDER.findall(form)), \
                f"{lang}: placeholders differ in {message.id!r}"


def _forms(value) -> tuple:
    """A message id or string as a tuple: one item, or every plural form (ngettext)."""
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_compiled_catalog_is_up_to_date(lang):
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.mo", "rb") as fp:
        compiled = {_forms(m.id): _forms(m.string) for m in read_mo(fp) if m.id}
    source = {_forms(m.id): _forms(m.string) for m in catalog(lang) if m.id}
    assert compiled == source, "run: pybabel compile -d locales -D messages"


@pytest.mark.parametrize("lang", ["pt", "es", "ht"])
def test_translations_are_not_english(lang):
    same = [m.id for m in catalog(lang) if m.id and m.string == m.id and len(m.id) > 12]
    assert not same, f"{lang}: left in English: {same}"


def test_language_is_per_context_not_global():
    load_catalogs()

    async def speak(lang, results):
        with use_language(lang):
            await asyncio.sleep(0.01)       # let the other conversation run in between
            results[lang] = _("Choose a topic:")

    async def both():
        results = {}
        await asyncio.gather(*(speak(lang, results) for lang in LANGUAGES))
        return results

    results = asyncio.run(both())
    assert results == {"en": "Choose a topic:", "pt": "Escolha um tema:", "es": "Elija un tema:",
                       "ht": "Chwazi yon sijè:"}
    assert _("Choose a topic:") == "Choose a topic:"   # outside, the default again


def test_placeholders_are_filled():
    text = translate("ht", "If immigration agents are at your door or someone was just detained, call the "
                           "LUCE rapid response hotline: {hotline}. In an emergency, call {emergency}.",
                     hotline="617-370-5023", emergency="911")
    assert "617-370-5023" in text and "911" in text and "{" not in text


def test_missing_catalog_is_a_clear_error_at_start(tmp_path):
    from bot.i18n import MissingCatalog

    with pytest.raises(MissingCatalog, match="pybabel compile"):
        load_catalogs(tmp_path)
    load_catalogs()  # restore the real ones for other tests
