"""Mask personal data in text that staff will read (questions the bot could not answer).

What is masked: emails, links, @handles, names given with "my name is" and its kin in the four
languages ("me llamo", "meu nome é", "mwen rele"...), street addresses, dates with a day
(03/12/1985, 12 de março, March 3), A-numbers, phone numbers and runs of five or more digits. The
words that tell staff what was asked stay. When unsure it masks: "Se llama Immigrant Legal Defense
Act?" loses the act's name. A month and year alone ("em janeiro de 2025") is kept.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_URL = re.compile(r"https?://\S+|www\.\S+", re.I)
# A-numbers: "A123456789", "A-123 456 789", "A# 12345678", "a number 123456789"
_A_NUMBER = re.compile(r"\b[Aa]\s*[-#:.]?\s*(\d[\s-]?){7,8}\d\b")
_PHONE = re.compile(r"(?<!\w)\+?\d?[\s.-]?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?!\w)")
_LONG_DIGITS = re.compile(r"\d(?:[\s.-]?\d){4,}")   # 5+ digits: case, ID, card, account numbers
_HANDLE = re.compile(r"(?<!\w)@\w{3,}")

# -- names ------------------------------------------------------------------------------------------
# What introduces a name, in English, Português, Español and Kreyòl (first and third person).
_NAME_INTRO = (
    r"\b(?:(?:my|his|her|their|our|your|[a-z]+'s)\s+(?:full\s+|first\s+|last\s+)?name\s+(?:is|was)"
    r"|my\s+name's|i\s+am\s+called|i'm\s+called"
    r"|(?:meu|seu|o)\s+nome\s+(?:completo\s+)?(?:é|e)|o\s+nome\s+(?:dele|dela)\s+(?:é|e)"
    r"|(?:eu\s+)?me\s+chamo|(?:mi|su)\s+nombre\s+(?:completo\s+)?es|non\s+(?:mwen|m|li)\s+se"
    r"|(?P<verb>me\s+llamo|se\s+llama|(?:ele|ela)\s+se\s+chama|(?:mwen|m|li)\s+rele))\s+")
# "me llamo" is also "(he) called me" and "m rele" is also "I call": after these, only a word
# with a capital is a name ("mwen rele Jean", not "mwen rele lapolis"), and not after "pou m rele"
# (to call), "si m rele" (if I call)...
_CALLING = {"pou", "lè", "le", "si", "ki", "kiyès", "kiyes", "moun", "ka", "dwe", "te", "pral", "ap",
            "va", "konn", "vle", "bezwen", "esposo", "esposa", "hijo", "hija", "mamá", "mama", "papá",
            "papa", "alguien", "abogado", "jefe", "ayer", "hoy", "nadie", "quien", "quién"}
_WORD = r"[^\W\d_](?:[\w'’-]|\.(?=\w))*"
_NAME = re.compile(r"(?P<intro>" + _NAME_INTRO + r")(?P<name>" + _WORD + r"(?:[ \t]+" + _WORD + r"){0,4})",
                   re.I)
_PARTICLES = {"de", "da", "do", "dos", "das", "del", "la", "van", "von", "di", "du"}
# Words that end a name: they start the rest of the sentence, in any of the four languages.
_NOT_A_NAME = set("""
    and but or so because i im i'm me my mine is am are was from in at on to of for with the a an
    please pls thanks what how when where why who can could do does did will would should
    he she they we you it this that here there not no yes ice police court lawyer
    e mas ou porque eu meu minha sou estou tenho moro em no na nos nas para pra por com o os as um
    uma que como quando onde quem não nao sim ele ela eles
    y pero yo mi mis soy estoy tengo vivo en el los las un una cuando donde quien si sí con él ella
    ellos ak men oswa paske mwen m se nan pou ki kijan kilè kote kiyès pa wi li yo nou w yon
    lapolis polis avoka tribinal lakay epi
""".split())


def _name(match: re.Match) -> str:
    words = match.group("name").split()
    if match.group("verb"):
        before = match.string[:match.start()].split()
        if not words[0][:1].isupper() or (before and before[-1].lower().strip(",.") in _CALLING):
            return match.group(0)
    end = 0
    for i, word in enumerate(words):
        low = word.lower()
        if low in _PARTICLES and end and i + 1 < len(words) and words[i + 1][:1].isupper():
            continue   # "da Silva", "de la Cruz": the next word decides
        if low in _NOT_A_NAME or low in _PARTICLES:
            break
        end = i + 1
    if not end:
        return match.group(0)
    return match.group("intro") + "[name]" + "".join(" " + w for w in words[end:])


# -- street addresses -------------------------------------------------------------------------------
_UNIT = r"(?:,?\s*(?:apt|apartment|apto|unit|suite|ste|#|nº|n°)\s*\.?\s*\w{1,5})?"
# "45 Washington St", "88 blue hill ave apt 3": suffixes that are rarely anything else, any case
_ADDRESS_NUMBER_FIRST = re.compile(
    r"\b\d{1,6}[A-Za-z]?\s+(?:" + _WORD + r"\s+){0,3}?(?:street|st|avenue|ave|boulevard|blvd|rd|ln|ct"
    r"|pl|sq|pkwy|hwy)\b\.?" + _UNIT, re.I)
# "12 Oak Road", "5 Summer Court": words that are often something else ("2 days before court"),
# so only with capitals
_ADDRESS_CAPITALIZED = re.compile(
    r"\b\d{1,6}[A-Za-z]?\s+(?:[A-Z][\w'’-]*\s+){1,3}(?:Road|Drive|Dr|Lane|Court|Place|Square|Terrace"
    r"|Circle|Way|Parkway|Highway|Park|Row)\b\.?" + _UNIT)
# "Rua das Flores 120", "Calle Broadway 230", "Avenida Central, 45"
_ADDRESS_NAME_FIRST = re.compile(
    r"\b(?:rua|avenida|av\.|travessa|estrada|alameda|praça|praca|calle|camino|paseo)"
    r"\s+(?P<street>(?:" + _WORD + r"\s+){0,3}?" + _WORD + r"),?\s*\d{1,6}[A-Za-z]?\b" + _UNIT, re.I)


def _street(match: re.Match) -> str:
    """A street's name is names ("das Flores", "Broadway"), not a sentence ("en mi calle se han
    llevado a 3 vecinos")."""
    words = [w.lower() for w in match.group("street").split()]
    if any(w in _NOT_A_NAME and w not in _PARTICLES for w in words):
        return match.group(0)
    return "[address]"

# -- dates ------------------------------------------------------------------------------------------
# Month names that are also common words ("mas", "me", "out", "mar", "jen") count only with a day
# and a year: "12 mas 1985", never "mas 2 anos".
_MONTH = (r"(?:january|february|march|april|may|june|july|august|september|october|november|december"
          r"|jan|feb|apr|jun|jul|aug|sept|sep|oct|nov|dec"
          r"|janeiro|fevereiro|março|marco|abril|maio|junho|julho|agosto|setembro|outubro|novembro|dezembro"
          r"|enero|febrero|marzo|mayo|junio|julio|septiembre|setiembre|octubre|noviembre|diciembre"
          r"|janvye|fevriye|avril|jiyè|jiye|septanm|oktòb|oktob|novanm|desanm)")
_AMBIGUOUS_MONTH = r"(?:mas|me|out|mar|jen)"
_DAY = r"\d{1,2}(?:st|nd|rd|th|º|°)?"
_YEAR = r"(?:1[89]\d\d|20\d\d)"
_DATE = re.compile(
    r"\b" + _YEAR + r"[-/.]\d{1,2}[-/.]\d{1,2}\b"                                # 1985-03-12
    r"|\b\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})\b"                             # 03/12/1985, 3.12.85
    r"|\b" + _DAY + r"\s+(?:de\s+)?" + _MONTH + r"\.?(?:,?\s+(?:de\s+|del\s+)?" + _YEAR + r")?\b"
    r"|\b" + _DAY + r"\s+(?:de\s+)?" + _AMBIGUOUS_MONTH + r"\s+(?:de\s+)?" + _YEAR + r"\b"  # 12 mas 1985
    r"|\b" + _MONTH + r"\.?\s+" + _DAY + r"(?:,?\s+" + _YEAR + r")?\b",            # March 3, 1985
    re.I)   # a month and year alone ("em janeiro de 2025") is kept: what changed then, not who


def mask_personal_data(text: str) -> str:
    """Replace emails, links, @handles, names, street addresses, dates, A-numbers, phone
    numbers and long digit runs with placeholders, keeping the words that tell staff what was
    asked."""
    text = _EMAIL.sub("[email]", text)
    text = _URL.sub("[link]", text)
    text = _HANDLE.sub("[handle]", text)
    text = _NAME.sub(_name, text)
    text = _ADDRESS_NUMBER_FIRST.sub("[address]", text)
    text = _ADDRESS_CAPITALIZED.sub("[address]", text)
    text = _ADDRESS_NAME_FIRST.sub(_street, text)
    text = _DATE.sub("[date]", text)
    text = _A_NUMBER.sub("[A-number]", text)
    text = _PHONE.sub("[phone]", text)
    text = _LONG_DIGITS.sub("[number]", text)
    return " ".join(text.split())
