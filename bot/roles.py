"""Who may do what. Admins may do everything; BOT_ADMIN_IDS are admins without being stored."""

from __future__ import annotations

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
