"""Render the engine's channel-neutral replies as WhatsApp Cloud API messages.

Text: the knowledge base's HTML subset becomes WhatsApp's own marks: <b> → *bold*, <i> → _italic_,
<s> → ~strike~, <code> → `code`, links → "label (https://...)" (or the address alone when the
label is the address), <blockquote> → "> " lines; <u> and spoilers lose their mark, never their
words. "•" lists are already plain text and stay as they are.

Buttons: WhatsApp allows up to 3 reply buttons with titles of at most 20 characters, or a list of
at most 10 rows with titles of at most 24 characters (and a 72-character description). A reply
with more choices than a list holds is paginated: one list message per 10 choices. An
interactive message's body holds at most 1,024 characters, a text message 4,096: longer text goes
first as text messages, the last 1,024 characters or less carry the buttons.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from ...messages import Button, Reply
from ...i18n import _

TEXT_LIMIT = 4096
BODY_LIMIT = 1024
MAX_REPLY_BUTTONS = 3
REPLY_TITLE_LIMIT = 20
MAX_LIST_ROWS = 10
ROW_TITLE_LIMIT = 24
ROW_DESCRIPTION_LIMIT = 72
LIST_BUTTON_LIMIT = 20
ID_LIMIT = 200

_MARKS = {"b": "*", "strong": "*", "i": "_", "em": "_", "s": "~", "strike": "~", "del": "~", "code": "`"}


class _ToWhatsApp(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.pending: list[str] = []        # marks opened, written before the next visible character
        self.open: list[str | None] = []    # per open tag: its mark, or None
        self.links: list[tuple[str, int]] = []
        self.quote = False

    def _text(self, data: str) -> None:
        if self.quote:
            data = data.replace("\n", "\n> ")
        if self.pending:
            stripped = data.lstrip()
            if not stripped:
                self.out.append(data)
                return
            self.out.append(data[: len(data) - len(stripped)] + "".join(self.pending))
            self.pending = []
            data = stripped
        self.out.append(data)

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links.append((dict(attrs).get("href") or "", len(self.out)))
            self.open.append(None)
        elif tag == "blockquote":
            self.quote = True
            self.out.append("> ")
            self.open.append(None)
        else:
            mark = _MARKS.get(tag)
            self.open.append(mark)
            if mark:
                self.pending.append(mark)

    def handle_endtag(self, tag):
        if not self.open:
            return
        mark = self.open.pop()
        if tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.out[start:])
            plain = re.sub(r"[*_~`]", "", label).strip()
            if href and not href.rstrip("/").endswith(plain.rstrip("/")):
                self.out.append(f" ({href})")
            elif href:
                del self.out[start:]
                self.out.append(href)
            return
        if tag == "blockquote":
            self.quote = False
            return
        if not mark:
            return
        if mark in self.pending:            # nothing visible inside: drop the mark
            self.pending.remove(mark)
            return
        text = "".join(self.out)
        stripped = text.rstrip()
        self.out = [stripped, mark, text[len(stripped):]]   # marks hug the words: "*a* ", not "*a *"

    def handle_data(self, data):
        self._text(data)


def to_whatsapp(text: str) -> str:
    """WhatsApp's formatting for a text in the knowledge base's HTML subset."""
    parser = _ToWhatsApp()
    parser.feed(text)
    parser.close()
    return "".join(parser.out).strip()


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split rendered text at line breaks (then spaces) into parts of at most `limit`."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        pieces = [line]
        if len(line) > limit:
            pieces, piece = [], ""
            for word in line.split(" "):
                while len(word) > limit:
                    if piece:
                        pieces.append(piece)
                        piece = ""
                    pieces.append(word[:limit])
                    word = word[limit:]
                candidate = f"{piece} {word}" if piece else word
                if len(candidate) <= limit:
                    piece = candidate
                else:
                    pieces.append(piece)
                    piece = word
            if piece:
                pieces.append(piece)
        for piece in pieces:
            candidate = f"{current}\n{piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
            else:
                if current.strip():
                    parts.append(current)
                current = piece
    if current.strip():
        parts.append(current)
    return parts


def _shorten(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def render(reply: Reply) -> list[dict]:
    """The message objects (without `to` and `messaging_product`) that show `reply` on WhatsApp."""
    text = to_whatsapp(reply.text) or "…"
    buttons = [b for row in reply.buttons for b in row]
    if not buttons:
        return [{"type": "text", "text": {"body": part, "preview_url": False}} for part in split_text(text)]
    parts = split_text(text, BODY_LIMIT)
    head = split_text("\n".join(parts[:-1])) if len(parts) > 1 else []
    messages = [{"type": "text", "text": {"body": part, "preview_url": False}} for part in head]
    return messages + interactive(parts[-1], buttons)


def interactive(body: str, buttons: list[Button]) -> list[dict]:
    """Reply buttons when they fit (3, titles ≤ 20, distinct), else lists of 10 rows per message."""
    titles = [b.label for b in buttons]
    if (len(buttons) <= MAX_REPLY_BUTTONS and all(len(t) <= REPLY_TITLE_LIMIT for t in titles)
            and len(set(titles)) == len(titles)):
        return [{"type": "interactive", "interactive": {
            "type": "button", "body": {"text": body},
            "action": {"buttons": [{"type": "reply", "reply": {"id": b.data[:ID_LIMIT], "title": b.label}}
                                   for b in buttons]}}}]
    pages = [buttons[i:i + MAX_LIST_ROWS] for i in range(0, len(buttons), MAX_LIST_ROWS)]
    choose = _shorten(_("Choose an option"), LIST_BUTTON_LIMIT)
    messages = []
    for k, page in enumerate(pages, 1):
        rows = []
        for b in page:
            row = {"id": b.data[:ID_LIMIT], "title": _shorten(b.label, ROW_TITLE_LIMIT)}
            if len(b.label) > ROW_TITLE_LIMIT:
                row["description"] = _shorten(b.label, ROW_DESCRIPTION_LIMIT)
            rows.append(row)
        page_body = body if k == 1 else f"{_('Choose an option')} ({k}/{len(pages)})"
        messages.append({"type": "interactive", "interactive": {
            "type": "list", "body": {"text": page_body},
            "action": {"button": choose, "sections": [{"rows": rows}]}}})
    return messages
