"""Telegram's HTML subset: validate it, turn it into plain text, and split long messages.

Answers in the knowledge base are written in the HTML that Telegram's `parse_mode=HTML` accepts.
The same text is shown in the terminal as plain text, and must be split at 4,096 characters
without cutting a tag in half.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

TELEGRAM_LIMIT = 4096
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a",
                "blockquote", "tg-spoiler", "span"}
NAMED_ENTITIES = {"lt", "gt", "amp", "quot"}
_ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);")
_TAG = re.compile(r"<[^>]*>")


class HTMLProblem(ValueError):
    """Why Telegram would reject a text; `offset` is the character position in the text."""

    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.offset = offset


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"the tag <{tag}> is not allowed (use b, i, u, s, code or a)")
            return
        if tag == "a" and not dict(attrs).get("href"):
            self.problems.append('a link <a> needs href="https://..."')
        self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.problems.append(f"<{tag}/> is not allowed: Telegram has no self-closing tags")

    def handle_endtag(self, tag):
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"the closing tag </{tag}> is not allowed")
            return
        if not self.stack or self.stack[-1] != tag:
            opened = f"<{self.stack[-1]}>" if self.stack else "nothing"
            self.problems.append(f"</{tag}> closes {opened}: tags must close in order")
            if tag in self.stack:
                while self.stack and self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()

    def handle_entityref(self, name):
        if name not in NAMED_ENTITIES:
            self.problems.append(f"&{name}; is not an entity Telegram knows (write &amp;{name}; for a plain &)")

    def handle_comment(self, data):
        self.problems.append("HTML comments <!-- --> are not allowed")


def check_html(text: str) -> list[str]:
    """Every reason Telegram's HTML parser would reject `text` (empty list when it is fine)."""
    problems: list[str] = []
    for match in re.finditer(r"&", text):
        if not _ENTITY.match(text, match.start()):
            problems.append("a bare & must be written &amp;")
            break
    stripped = _TAG.sub("", text)
    if "<" in stripped or ">" in stripped:
        problems.append("a bare < or > must be written &lt; or &gt;")
    checker = _Checker()
    checker.feed(text)
    checker.close()
    problems.extend(checker.problems)
    if checker.stack:
        problems.append("unclosed tag(s): " + ", ".join(f"<{t}>" for t in checker.stack))
    return problems


def escape(text: str) -> str:
    """Escape plain text for Telegram HTML."""
    return html.escape(text, quote=False)


def to_plain(text: str) -> str:
    """Plain-text rendering of Telegram HTML, for the terminal: links keep their address."""

    def link(match: re.Match) -> str:
        href, label = match.group(1), match.group(2)
        label_plain = _TAG.sub("", label)
        return label_plain if href.rstrip("/").endswith(label_plain.rstrip("/")) else f"{label_plain} ({href})"

    text = re.sub(r'<a\s+href="([^"]*)"\s*>(.*?)</a>', link, text, flags=re.S)
    return html.unescape(_TAG.sub("", text))


def visible_length(text: str) -> int:
    """Length of the text as the user sees it (what Telegram counts against its limit)."""
    return len(to_plain(text))


def split_message(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split Telegram HTML into parts of at most `limit` characters, at line breaks.

    Lines are kept whole so no tag is cut; a single line longer than the limit is split at spaces
    after its tags are removed (it then loses its formatting, never its words).
    """
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        pieces = [line] if len(line) <= limit else _split_long_line(line, limit)
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


def _split_long_line(line: str, limit: int) -> list[str]:
    plain = to_plain(line)
    pieces: list[str] = []
    current = ""
    for word in plain.split(" "):
        while len(escape(word)) > limit:  # a "word" longer than the limit: cut it
            head, word = word[: limit // 2], word[limit // 2:]
            if current:
                pieces.append(escape(current))
                current = ""
            pieces.append(escape(head))
        candidate = f"{current} {word}" if current else word
        if len(escape(candidate)) <= limit:
            current = candidate
        else:
            pieces.append(escape(current))
            current = word
    if current:
        pieces.append(escape(current))
    return pieces
