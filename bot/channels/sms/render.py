"""The engine's replies as text messages: plain text, numbered choices, pages of at most 3 segments.

An SMS segment holds 160 GSM-7 characters, or 70 UCS-2 code units when any character is outside
GSM-7 (Portuguese "ç", "ã", Kreyòl "ò", an emoji). A message of several segments carries a header
in each: 153 GSM-7 characters or 67 UCS-2 units per segment. Each page the bot sends fits in
MAX_SEGMENTS; the first page holds the answer's first lines (what to do), and a page that is not the
last ends with "reply MORE for the rest". Decorative symbols (🚨, 👍, ☰, «) are dropped: on SMS
they would cost a UCS-2 message for an English answer, and carry no words.
"""

from __future__ import annotations

import re
import unicodedata

from ...engine import Button, Reply
from ...i18n import _
from ...telegram_html import to_plain

MAX_SEGMENTS = 3
GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
           "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENDED = set("^{}\\[~]|€\f")   # two septets each
# what people reply for the next page, in any of the four languages (normalised: no accents)
MORE_WORDS = {"more", "mais", "mas", "plis", "plus", "more please", "mas por favor"}


def encoding(text: str) -> str:
    return "GSM-7" if all(c in GSM7 or c in GSM7_EXTENDED for c in text) else "UCS-2"


def segments(text: str) -> int:
    """How many SMS segments `text` takes (as carriers and Twilio count them)."""
    if encoding(text) == "GSM-7":
        units = sum(2 if c in GSM7_EXTENDED else 1 for c in text)
        single, multi = 160, 153
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if units <= single:
        return 1
    return -(-units // multi)


def _plain(text: str) -> str:
    out = []
    for c in to_plain(text):
        if unicodedata.category(c) in ("So", "Sk", "Cs", "Co") or c in "\ufe0f\u200d«»":
            continue
        out.append(c)
    text = "".join(out)
    text = re.sub(r"[ \t]+\n", "\n", re.sub(r"(?m)^[ \t]+", "", text))
    text = text.replace("•", "-").replace("…", "...").replace("’", "'").replace("“", '"').replace("”", '"')
    return re.sub(r"\n{2,}", "\n", text).strip()   # a blank line costs characters on SMS


def message_text(replies: list[Reply]) -> tuple[str, list[Button]]:
    """All the replies as one plain text with numbered choices, and the buttons in their numbers' order."""
    parts, choices = [], []
    for reply in replies:
        text = _plain(reply.text)
        lines = []
        for row in reply.buttons:
            for button in row:
                choices.append(button)
                lines.append(f"{len(choices)} {_plain(button.label)}")
        parts.append("\n".join(([text] if text else []) + lines))
    return "\n".join(p for p in parts if p), choices


def pages(text: str, more: str | None = None, limit: int = MAX_SEGMENTS) -> list[str]:
    """`text` cut into messages of at most `limit` segments, each as full as it can be: at a line
    break when one falls in the page's last 40%, else between words (a word longer than a page is
    cut). Every page but the last ends with `more` ("reply MORE for the rest", in the current
    language)."""
    more = _("Reply MORE for the rest.") if more is None else more
    text = text.strip()
    if segments(text) <= limit:
        return [text]
    tail = "\n" + more
    fits = lambda page: segments(page + tail) <= limit   # noqa: E731
    out: list[str] = []
    page = ""
    tokens = [t for t in re.split(r"( |\n)", text) if t]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if fits(page + token):
            page += token
            i += 1
            continue
        if not page.strip():               # one word longer than a page: cut it
            cut = len(token)
            while cut > 1 and not fits(token[:cut]):
                cut -= 1
            out.append(token[:cut])
            tokens[i] = token[cut:]
            page = ""
            continue
        line_break = page.rfind("\n")
        if line_break >= 0.6 * len(page):  # end the page at the line break, carry the rest over
            rest = page[line_break + 1:]
            page = page[:line_break]
        else:
            rest = ""
        out.append(page.rstrip())
        page = rest.lstrip(" \n")
        if token in (" ", "\n") and not page:
            i += 1
    if page.strip():
        out.append(page.strip())
    return [p + tail for p in out[:-1]] + out[-1:]   # every page but the last says how to get the rest


def announcement(header: str, body: str, footer: str, limit: int = MAX_SEGMENTS) -> str:
    """An announcement as one text of at most `limit` segments, in plain text: the header, the text
    and the footer (how to stop), each on its own line. A text too long for that is cut between
    words and ends with "..."; the header and the footer are always kept."""
    head, text, foot = _plain(header), _plain(body), _plain(footer)

    def compose(middle: str) -> str:
        return "\n".join(p for p in (head, middle, foot) if p)

    if segments(compose(text)) <= limit:
        return compose(text)
    low, high = 0, len(text)             # the longest prefix that fits with "..." (segments only grow)
    while low < high:
        middle = (low + high + 1) // 2
        if segments(compose(text[:middle].rstrip() + "...")) <= limit:
            low = middle
        else:
            high = middle - 1
    cut = max(text.rfind(" ", 0, low + 1), text.rfind("\n", 0, low + 1))
    if cut >= 0.6 * low:                 # between words, unless that loses too much
        low = cut
    return compose(text[:low].rstrip(" \n,;:-") + "...")
