"""A conversation with the engine that reads like a transcript in tests."""

from __future__ import annotations

from bot.engine import Button, Engine, Incoming, Response
from bot.telegram_html import to_plain


class Conversation:
    """One person talking to the engine: `say()` text, `press()` a button by its label."""

    def __init__(self, engine: Engine, user_id: int = 1001, language_hint: str | None = None):
        self.engine = engine
        self.user_id = user_id
        self.language_hint = language_hint
        self.last: Response | None = None

    def say(self, text: str) -> Response:
        self.last = self.engine.handle(Incoming(self.user_id, text=text,
                                                language_hint=self.language_hint))
        return self.last

    def press(self, label_part: str) -> Response:
        button = self.button(label_part)
        self.last = self.engine.handle(Incoming(self.user_id, button=button.data,
                                                language_hint=self.language_hint))
        return self.last

    def press_data(self, data: str) -> Response:
        self.last = self.engine.handle(Incoming(self.user_id, button=data,
                                                language_hint=self.language_hint))
        return self.last

    def buttons(self) -> list[Button]:
        return [b for reply in self.last.replies for row in reply.buttons for b in row]

    def button(self, label_part: str) -> Button:
        for b in self.buttons():
            if label_part.lower() in b.label.lower():
                return b
        raise AssertionError(f"no button {label_part!r} in {[b.label for b in self.buttons()]}")

    @property
    def text(self) -> str:
        return "\n".join(to_plain(r.text) for r in self.last.replies)

    @property
    def entry(self) -> str | None:
        return self.last.match.entry if self.last.match else None

    @property
    def outcome(self) -> str | None:
        return self.last.match.outcome if self.last.match else None
