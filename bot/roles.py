"""Who may do what. Admins may do everything; BOT_ADMIN_IDS are admins without being stored."""

from __future__ import annotations

import re

from .storage import Database

# What each role allows, beyond what everyone can do.
PERMISSIONS = {
    "editor": {"reload", "report"},
    "organizer": {"broadcast"},
    "admin": {"reload", "report", "broadcast", "grant", "revoke"},
}


class Roles:
    def __init__(self, db: Database, admin_ids: frozenset[int] = frozenset()):
        self.db = db
        self.admin_ids = admin_ids

    def of(self, chat_id: int) -> set[str]:
        roles = self.db.roles_of(chat_id)
        if chat_id in self.admin_ids:
            roles.add("admin")
        return roles

    def may(self, chat_id: int, action: str) -> bool:
        """True if the person's roles allow `action` (e.g. "reload", "broadcast", "grant")."""
        return any(action in PERMISSIONS[role] for role in self.of(chat_id))


_PERSON_ID = re.compile(r"-?[0-9]{1,18}")   # ASCII digits only ("²" and "٣" are digits to Python)


def person_id(text: str) -> int | None:
    """A user id as staff type it (/grant, roles grant), or None: ASCII digits that fit the
    database's 64-bit integers (Telegram's ids have at most 16 digits)."""
    return int(text) if _PERSON_ID.fullmatch(text) else None


_PHONE = re.compile(r"\+?[0-9][0-9 ()\-.]{5,20}")


def staff_person(db: Database, text: str) -> int | None:
    """The person a staff command names: a Telegram user id (digits), or `whatsapp:NUMBER` /
    `sms:NUMBER` for someone who writes on those channels (the number as the phone shows it,
    +55 11 98765-4321). Never logged: it is a phone number. None if it is neither."""
    channel, sep, rest = text.partition(":")
    if not sep:
        return person_id(text)
    if channel.lower() not in ("whatsapp", "sms") or not _PHONE.fullmatch(rest.strip()):
        return None
    digits = re.sub(r"\D", "", rest)
    if not 6 <= len(digits) <= 15:   # E.164: at most 15 digits
        return None
    # as each channel stores it: WhatsApp's wa_id is digits, Twilio's From is +digits
    return db.person(channel.lower(), digits if channel.lower() == "whatsapp" else "+" + digits)
