"""Channels: thin translators between a messaging service and the engine.

Each channel turns the service's incoming messages into `engine.Incoming` and renders the engine's
channel-neutral `Reply` (text in the knowledge base's HTML subset, buttons, "replace the previous
message") the way the service shows it:

- `telegram`: python-telegram-bot handlers; Telegram HTML as is, inline keyboards.
- `whatsapp`: the WhatsApp Cloud API webhook (aiohttp) and sender; *bold*, _italic_, plain links,
  reply buttons or lists.
- `terminal`: `python main.py chat`; plain text, numbered choices.

What the engine needs to know about a channel is data, here: no channel code is imported by the
core.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..i18n import N_


@dataclass(frozen=True)
class ChannelTraits:
    name: str
    broadcasts: bool = True              # announcements can be delivered on it (/subscribe offered)
    privacy_warning: str | None = None   # msgid replacing the welcome's (Telegram) privacy warning
    forgotten: str | None = None         # msgid replacing /forget's (Telegram) "done" text


TRAITS = {
    "telegram": ChannelTraits("telegram"),
    "terminal": ChannelTraits("terminal"),
    "whatsapp": ChannelTraits(
        "whatsapp",
        privacy_warning=N_(
            "⚠️ Do not send your full name, A-number, address or how you entered the U.S. On "
            "WhatsApp your messages reach the people who run this bot through Meta's servers, and "
            "the bot knows your phone number. I keep no log of our conversation. Only questions I "
            "cannot answer are saved, for 30 days, with phone numbers, A-numbers and emails hidden "
            "and no link to you, so staff can improve the answers. More: /privacy"),
        forgotten=N_(
            "Done. Everything the bot kept about you is deleted, your phone number too. The bot "
            "cannot delete messages in WhatsApp: to remove them, delete this chat in WhatsApp.")),
    # the web chat (bot/channels/web): an anonymous random session id, the conversation in the tab
    "web": ChannelTraits(
        "web", broadcasts=False,
        privacy_warning=N_(
            "⚠️ Do not send your full name, A-number, address or how you entered the U.S. On this "
            "page your messages reach the people who run this bot. The conversation stays only in "
            "this browser tab, with no cookies, and is erased when you close the tab or press "
            "Quick exit. Only questions I cannot answer are saved, for 30 days, with phone "
            "numbers, A-numbers and emails hidden and no link to you. More: /privacy"),
        forgotten=N_(
            "Done. Everything the bot kept about this conversation is deleted, and the page "
            "forgot it too.")),
    # SMS through Twilio (bot/channels/sms): the phone number is the person's address
    "sms": ChannelTraits(
        "sms",
        privacy_warning=N_(
            "Do not send your name, A-number or address. Texts pass through your phone company "
            "and Twilio, and the bot knows your number. Unanswered questions are kept 30 days "
            "with no link to you. More: /privacy"),
        forgotten=N_(
            "Done. The bot deleted everything it kept about you, your phone number too. Delete "
            "the texts on your phone to remove them.")),
}


def traits(channel: str) -> ChannelTraits:
    return TRAITS.get(channel, TRAITS["telegram"])
