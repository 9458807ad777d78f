"""Text normalisation shared by matching, language detection and the knowledge-base checks.

People type on phones: no accents, repeated letters ("siiiim"), chat abbreviations ("vc", "q",
"m"), stray punctuation and emoji. Everything that compares text goes through `normalize()` so the
knowledge base's phrasings and the user's message meet on the same ground.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Zero-width characters, bidi controls and other format characters (Unicode category Cf) are
# removed; other control characters become spaces.
_REPEATS = re.compile(r"(\w)\1{2,}")
_NON_WORD = re.compile(r"[^\w]+")
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[^\W\d])|(?<=[^\W\d])(?=\d)")

# Chat abbreviations, per language. Applied to whole tokens after accents are stripped.
ABBREVIATIONS: dict[str, dict[str, str]] = {
    "en": {
        "u": "you", "r": "are", "ur": "your", "pls": "please", "plz": "please", "wat": "what",
        "wht": "what", "abt": "about", "im": "i am", "dont": "do not", "cant": "can not",
        "wont": "will not", "idk": "i do not know", "thx": "thanks", "ty": "thanks", "b4": "before",
        "bc": "because", "cuz": "because", "w": "with", "hv": "have", "wanna": "want to",
        "gonna": "going to", "whats": "what is", "theres": "there is", "theyre": "they are",
        "doesnt": "does not", "didnt": "did not", "isnt": "is not", "hes": "he is", "shes": "she is",
    },
    "pt": {
        "vc": "voce", "vcs": "voces", "q": "que", "pq": "porque", "tb": "tambem", "tbm": "tambem",
        "n": "nao", "nao": "nao", "ta": "esta", "to": "estou", "tou": "estou", "oq": "o que",
        "msm": "mesmo", "cmg": "comigo", "hj": "hoje", "qdo": "quando", "qnd": "quando",
        "mt": "muito", "mto": "muito", "p": "para", "pra": "para", "pro": "para o", "ngm": "ninguem",
        "td": "tudo", "blz": "beleza", "vlw": "valeu", "obg": "obrigado", "tao": "estao",
        "eh": "e", "qm": "quem", "cm": "como", "dps": "depois", "fds": "fim de semana",
    },
    "es": {
        "q": "que", "k": "que", "xq": "porque", "pq": "porque", "porq": "porque", "tb": "tambien",
        "tmb": "tambien", "d": "de", "x": "por", "xfa": "por favor", "pls": "por favor",
        "toy": "estoy", "ta": "esta", "tons": "entonces", "ntons": "entonces", "aki": "aqui",
        "kiero": "quiero", "salu2": "saludos", "grax": "gracias", "ps": "pues", "npi": "no se",
        "msj": "mensaje", "dnd": "donde", "cdo": "cuando", "qien": "quien", "hda": "hacer",
    },
    "ht": {
        "m": "mwen", "mw": "mwen", "w": "ou", "n": "nou", "y": "yo", "l": "li", "k": "ki",
        "ka": "kapab", "kab": "kapab", "kap": "ki ap", "map": "mwen ap", "wap": "ou ap",
        "yap": "yo ap", "nap": "nou ap", "lap": "li ap", "f": "fe", "sak": "sa ki",
        "ksa": "kisa", "kouman": "kijan", "pm": "pou mwen",
    },
}


_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# Unicode format characters (category Cf): soft hyphen, zero-width and bidi controls, BOM, tags.
_FORMAT = re.compile("[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u180e\u200b-\u200f\u202a-\u202e"
                     "\u0890\u0891\u08e2\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
                     "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
                     "\U000e0001-\U000e007f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def fold(text: str) -> str:
    """Lower-case, strip accents and drop format/control characters, keeping everything else."""
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
        text = _FORMAT.sub("", text)
    return _CONTROL.sub(" ", text).casefold()


def normalize(text: str) -> str:
    """The canonical comparable form: folded, punctuation removed, repeats squeezed, spaces single.

    >>> normalize("  Siiiim, a IMIGRAÇÃO tá na porta!!! ")
    'sim a imigracao ta na porta'
    """
    text = fold(text)
    text = text.replace("_", " ").replace("'", "").replace("\u2019", "")
    text = _NON_WORD.sub(" ", text)
    text = _REPEATS.sub(r"\1", text)
    return " ".join(text.split())


# Knowledge-base text is normalised by the loader, the matcher and the language detector:
# cache it so each phrasing is done once. Never used for what people write (no message text
# is kept in memory beyond its handling).
normalize_known = lru_cache(maxsize=1 << 19)(normalize)


def tokens(text: str) -> list[str]:
    """Normalised word tokens."""
    return normalize(text).split()


def expand_abbreviations(words: list[str], lang: str) -> list[str]:
    """Replace chat abbreviations of `lang` by the words they stand for."""
    table = ABBREVIATIONS.get(lang, {})
    if table.keys().isdisjoint(words):
        return words
    out: list[str] = []
    for word in words:
        out.extend(table.get(word, word).split())
    return out


def is_blank(text: str | None) -> bool:
    """True for None, empty, whitespace-only, or text with no letter or digit at all (emoji)."""
    return not text or not normalize(text)
