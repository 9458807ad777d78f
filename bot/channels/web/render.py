"""The knowledge base's HTML subset as a tree of plain data, for the web page to build with DOM calls.

The page never parses HTML: it receives `["b", [children]]`, `["a", {"href": ...}, [children]]` and
strings, and builds elements with `createElement` and text with `textContent`. Only the subset's
tags are kept (b, i, u, s, code, pre, blockquote, spoilers, links to https/http/tel/mailto); any
other tag is dropped with its words kept as text, so nothing a reply holds can become markup or
script. Entities are decoded here; the page shows "<script>" as those eight characters.
"""

from __future__ import annotations

from html.parser import HTMLParser

from ...engine import Reply, Response

TAGS = {"b": "b", "strong": "b", "i": "i", "em": "i", "u": "u", "ins": "u", "s": "s", "strike": "s",
        "del": "s", "code": "code", "pre": "pre", "blockquote": "blockquote", "tg-spoiler": "mark"}
LINK_SCHEMES = ("https://", "http://", "tel:", "mailto:")


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root: list = []
        self.stack: list[tuple[str | None, list]] = [(None, self.root)]

    def _open(self, name: str | None, node: list | None, children: list) -> None:
        if node is not None:
            self.stack[-1][1].append(node)
        self.stack.append((name, children))

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        children: list = []
        if tag == "a":
            href = (attributes.get("href") or "").strip()
            if href.lower().startswith(LINK_SCHEMES):
                self._open(tag, ["a", {"href": href}, children], children)
            else:   # a link to anything else keeps its words, not its address
                self._open(tag, None, self.stack[-1][1])
        elif tag == "span" and "tg-spoiler" in (attributes.get("class") or ""):
            self._open(tag, ["mark", children], children)
        elif tag in TAGS:
            self._open(tag, [TAGS[tag], children], children)
        else:      # <script>, <img>, <div>...: not markup here; its text stays text
            self._open(tag, None, self.stack[-1][1])

    def handle_startendtag(self, tag, attrs):
        if tag == "br":
            self.stack[-1][1].append("\n")

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth][0] == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        children = self.stack[-1][1]
        if children and isinstance(children[-1], str):
            children[-1] += data
        else:
            children.append(data)


def tree(text: str) -> list:
    """The reply's text as nested lists: strings, [tag, children], ["a", {"href"}, children]."""
    parser = _Tree()
    parser.feed(text)
    parser.close()
    return parser.root


def reply_json(reply: Reply) -> dict:
    return {"text": tree(reply.text), "replace": reply.replace,
            "buttons": [[{"label": b.label, "data": b.data} for b in row] for row in reply.buttons]}


def response_json(response: Response, chosen: str | None) -> dict:
    """What the page gets for one message: replies, the answer's language, the language the person
    picked (None until they pick one: the page then follows the browser's), and whether the
    conversation was just forgotten (the page erases it and takes a new session id)."""
    return {"language": response.language, "chosen": chosen, "forgotten": response.forgotten,
            "replies": [reply_json(r) for r in response.replies]}
