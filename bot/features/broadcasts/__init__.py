"""Announcements: composing them (composer.py), what they look like (content.py), delivering them
per channel (delivery.py: Telegram and the shared machinery; whatsapp.py; sms.py), the command line
(cli.py). `register(engine)` adds /broadcast, /cancel, the "b:" buttons and the composer's text
hook."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...engine import Engine
    from ...messages import Request, Response


def register(engine: "Engine") -> None:
    from . import composer

    def command(request: "Request") -> "Response":
        return composer.on_command(request.engine, request.user_id, request.command, request.lang)

    def pressed(request: "Request", arg: str) -> "Response":
        return composer.on_button(request.engine, request.user_id, arg, request.lang)

    for name in ("broadcast", "cancel"):   # organizers; everyone else: the unknown-command reply
        engine.add_command(name, command, permission="broadcast")
    engine.add_button("b", pressed)
    engine.add_text_hook(composer.on_text)
