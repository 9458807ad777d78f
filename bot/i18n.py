"""UI strings through gettext catalogs, one translator per language, chosen per message.

Like aiogram's i18n: the language of the message being handled lives in a context variable, so
concurrent conversations in different languages never share one; there is no process-wide
`gettext.install()`. Catalogs are `locales/<lang>/LC_MESSAGES/messages.po`, compiled to `.mo` with
`pybabel compile` (see the README).
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from pathlib import Path

from babel.support import NullTranslations, Translations

from .languages import DEFAULT_LANGUAGE, LANGUAGES

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"

current_language: contextvars.ContextVar[str] = contextvars.ContextVar("current_language",
                                                                      default=DEFAULT_LANGUAGE)
_translators: dict[str, NullTranslations] = {}


class MissingCatalog(RuntimeError):
    """A language's compiled catalog is missing: the bot must not start half-translated."""


def load_catalogs(locale_dir: Path = LOCALE_DIR) -> None:
    """Load every language's compiled catalog; raise `MissingCatalog` naming what is missing."""
    missing = []
    for lang in LANGUAGES:
        mo = locale_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"
        if not mo.is_file():
            missing.append(str(mo))
            continue
        with mo.open("rb") as fp:
            _translators[lang] = Translations(fp, domain=DOMAIN)
    if missing:
        raise MissingCatalog("missing compiled translations: " + ", ".join(missing) +
                             ". Run: pybabel compile -d locales -D messages")


def _translator(lang: str) -> NullTranslations:
    if not _translators:
        load_catalogs()
    return _translators.get(lang) or _translators[DEFAULT_LANGUAGE]


def gettext(message: str, **params) -> str:
    """Translate `message` into the current language, then fill its {named} placeholders."""
    text = _translator(current_language.get()).gettext(message)
    return text.format(**params) if params else text


def ngettext(singular: str, plural: str, n: int, **params) -> str:
    text = _translator(current_language.get()).ngettext(singular, plural, n)
    return text.format(n=n, **params)


def translate(lang: str, message: str, **params) -> str:
    """Translate into a given language without touching the current one."""
    with use_language(lang):
        return gettext(message, **params)


def N_(message: str) -> str:
    """Mark a string for extraction without translating it yet (module-level constants)."""
    return message


@contextmanager
def use_language(lang: str):
    """Make `lang` the current language for the code inside the block."""
    token = current_language.set(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)
    try:
        yield
    finally:
        current_language.reset(token)


_ = gettext
