"""Features: what the bot does beyond answering questions, each registered with the engine.

- `staff`: /reload, /report (and its teach buttons), /grant, /revoke.
- `subscriptions`: /subscribe, /unsubscribe, stop words, the "resume?" question.
- `broadcasts`: /broadcast and /cancel for organizers (composer), delivery per channel (Telegram:
  delivery.py, WhatsApp: whatsapp.py), `python main.py broadcast ...` (cli.py).

Each has one `register(engine)` that adds its commands, buttons and text hooks with
`Engine.add_command`, `add_button`, `add_text_hook` and `add_message_hook`, the way handlers are
added to python-telegram-bot's Application. This is the one place they are wired: a feature
imports the core (messages, storage, i18n...), never the engine module, and never another
feature's handlers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import Engine


def register_all(engine: "Engine") -> None:
    """Wire every feature into `engine`, in the order their text hooks are tried."""
    from . import broadcasts, staff, subscriptions

    for feature in (staff, broadcasts, subscriptions):   # an organizer's text before stop words
        feature.register(engine)
