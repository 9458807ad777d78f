"""The four languages the bot speaks, and the ways a person names or signals them."""

from __future__ import annotations

from .text import normalize

LANGUAGES = ("en", "pt", "es", "ht")
DEFAULT_LANGUAGE = "en"

# Each language's name in itself: what the picker shows.
NATIVE_NAMES = {
    "en": "English",
    "pt": "Português",
    "es": "Español",
    "ht": "Kreyòl ayisyen",
}
FLAGS = {"en": "🇺🇸", "pt": "🇧🇷", "es": "🇪🇸", "ht": "🇭🇹"}

# What people type to ask for a language, in any of the four languages (normalised form).
_NAMES = {
    "en": ["english", "ingles", "angle", "anglais", "inglish", "in english", "em ingles",
           "en ingles", "an angle"],
    "pt": ["portugues", "portuguese", "portuges", "potige", "portugal", "brasil", "brazil",
           "em portugues", "in portuguese", "en portugues", "an potige", "portugues brasileiro"],
    "es": ["espanol", "spanish", "espanhol", "espayol", "castellano", "panyol", "en espanol",
           "in spanish", "em espanhol", "an panyol"],
    "ht": ["kreyol", "kreol", "creole", "haitian", "haitian creole", "kreyol ayisyen", "ayisyen",
           "crioulo", "criollo", "creole haitiano", "an kreyol", "in creole", "em crioulo",
           "en criollo", "kreyol tanpri"],
}
_NAME_TO_LANG = {name: lang for lang, names in _NAMES.items() for name in names}


def language_named(text: str) -> str | None:
    """The language a message asks for when it is only a language's name ("Português", "kreyol")."""
    return _NAME_TO_LANG.get(normalize(text))


def from_telegram_code(code: str | None) -> str | None:
    """Map Telegram's `language_code` (an IETF tag such as "pt-br") to one of ours, or None."""
    if not code:
        return None
    primary = code.lower().replace("_", "-").split("-")[0]
    return primary if primary in LANGUAGES else None
