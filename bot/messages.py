"""What goes into the engine and what comes out, channel-neutral (part of the core).

Kept apart from `engine.py` so that features (bot/features/) can build replies without importing
the engine: the engine imports the features' `register()` functions, never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from .i18n import current_language

if TYPE_CHECKING:
    from .matcher import MatchResult
    from .engine import Engine
    from .storage import User


@dataclass(frozen=True)
class Button:
    label: str
    data: str  # at most 64 bytes (Telegram's callback_data limit)


def button(label: str, action: str) -> Button:
    """A button whose data also carries the language it was shown in ("a:warrants@pt"), so that
    pressing it answers in that language even for someone who never chose one."""
    return Button(label, f"{action}@{current_language.get()}")


@dataclass
class Reply:
    text: str                                   # the knowledge base's HTML subset; channels render it
    buttons: list[list[Button]] = field(default_factory=list)
    replace: bool = False                       # edit the message whose button was pressed


@dataclass
class Incoming:
    user_id: int
    text: str | None = None
    button: str | None = None
    language_hint: str | None = None            # the client's language code, e.g. "pt-br"
    channel: str = "telegram"                   # which channel it came by (see bot/channels/)


@dataclass
class Response:
    replies: list[Reply]
    language: str
    match: MatchResult | None = None
    delete_messages: list[int] = field(default_factory=list)  # /forget: ids to delete in the chat
    forgotten: bool = False  # the person was just deleted: record nothing more about this chat


@dataclass
class Request:
    """What a command or button handler gets: the engine, the message, the reply language."""

    engine: "Engine"
    incoming: Incoming
    lang: str
    command: str = ""              # a command's name, without "/" ("subscribe")
    text: str = ""                 # a command's whole text ("/grant 123 editor")
    first_contact: bool = False    # the person has not chosen a language yet

    @property
    def user_id(self) -> int:
        return self.incoming.user_id

    @property
    def args(self) -> list[str]:
        return self.text.split()[1:]


# Handlers, as features register them with the engine (Engine.add_command, add_button, ...).
CommandHandler = Callable[[Request], Response]
ButtonHandler = Callable[[Request, str], Response]              # (request, the data after "prefix:")
TextHook = Callable[["Engine", Incoming, "User", str], "Response | None"]
# Called before a message is handled; a function returned is applied to the response (the
# subscriptions feature asks people who come back whether to resume their announcements).
MessageHook = Callable[["Engine", Incoming], "Callable[[Response], Response] | None"]
