"""SQLite storage: one file, created on first run, readable by its owner only.

It keeps the least that works: per person the chat id, the chosen language and dates (later
issues add subscriptions and roles). Never message text. Migrations are versioned in code: each
is applied once, in order, inside a transaction.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

MIGRATIONS: list[str] = [
    # 1: people
    """
    CREATE TABLE users (
        chat_id    INTEGER PRIMARY KEY,
        language   TEXT,               -- chosen explicitly by the person; NULL until they choose
        created_at TEXT NOT NULL,
        last_seen  TEXT NOT NULL       -- for retention of inactive people
    );
    """,
    # 2: ids (never contents) of the last 48 hours' messages, so /forget can delete them
    """
    CREATE TABLE recent_messages (
        chat_id    INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        at         TEXT NOT NULL,
        PRIMARY KEY (chat_id, message_id)
    );
    """,
    # 3: staff roles (editor, organizer, admin), granted by admins or seeded by BOT_ADMIN_IDS
    """
    CREATE TABLE roles (
        chat_id    INTEGER NOT NULL,
        role       TEXT NOT NULL CHECK (role IN ('editor', 'organizer', 'admin')),
        granted_at TEXT NOT NULL,
        PRIMARY KEY (chat_id, role)
    );
    """,
    # 4: what staff need to improve answers, with no link to any person
    """
    CREATE TABLE unanswered (
        id       INTEGER PRIMARY KEY,
        asked_on TEXT NOT NULL,        -- a date, not a time
        lang     TEXT NOT NULL,
        outcome  TEXT NOT NULL,        -- 'none' (fallback) or 'suggest'
        text     TEXT NOT NULL         -- phone numbers, emails, A-numbers and long numbers masked
    );
    CREATE TABLE feedback (
        entry    TEXT NOT NULL,
        lang     TEXT NOT NULL,
        helpful  INTEGER NOT NULL DEFAULT 0,
        unhelpful INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (entry, lang)
    );
    """,
]
ROLES = ("editor", "organizer", "admin")

# Telegram lets a bot delete messages in a private chat only while they are under 48 hours old.
DELETABLE_FOR = dt.timedelta(hours=48)


# Columns that hold a Telegram user or chat id: /forget deletes rows by these.
PERSON_COLUMNS = {"chat_id", "user_id"}


class StorageError(RuntimeError):
    """The database cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class User:
    chat_id: int
    language: str | None
    created_at: str
    last_seen: str


def _now(delta: dt.timedelta = dt.timedelta(0)) -> str:
    return (dt.datetime.now(dt.timezone.utc) + delta).replace(microsecond=0).isoformat()


class Database:
    """A small synchronous wrapper around one SQLite file (fast local calls, one lock)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if not self.path.exists():
                    os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            old_umask = os.umask(0o077)  # the -wal/-journal files too
            try:
                self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=5)
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA foreign_keys=ON")
                self._migrate()
            finally:
                os.umask(old_umask)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot open the database {self.path}: {exc}. If the file is "
                               "damaged, move it away and start again (a new one is created), or "
                               "restore a backup.") from exc
        except OSError as exc:
            raise StorageError(f"cannot create the database {self.path}: {exc.strerror}. Check "
                               "the folder exists, is writable and the disk is not full.") from exc

    def _migrate(self) -> None:
        with self._lock, self._conn:
            self._conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = row[0] or 0
            if current > len(MIGRATIONS):
                raise StorageError(f"the database {self.path} was made by a newer version of the bot "
                                   f"(schema {current}); update the bot")
            for version, sql in enumerate(MIGRATIONS[current:], start=current + 1):
                self._conn.executescript("BEGIN;" + sql + f"INSERT INTO schema_version VALUES ({version});COMMIT;")

    @property
    def schema_version(self) -> int:
        return self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- users ----------------------------------------------------------------------------------

    def get_user(self, chat_id: int) -> User | None:
        with self._lock:
            row = self._conn.execute("SELECT chat_id, language, created_at, last_seen FROM users "
                                     "WHERE chat_id = ?", (chat_id,)).fetchone()
        return User(*row) if row else None

    def touch_user(self, chat_id: int) -> User:
        """Record that the person wrote now; creates their row on first contact."""
        now = _now()
        with self._lock, self._conn:
            self._conn.execute("INSERT INTO users (chat_id, language, created_at, last_seen) "
                               "VALUES (?, NULL, ?, ?) ON CONFLICT(chat_id) DO UPDATE SET last_seen = ?",
                               (chat_id, now, now, now))
        return self.get_user(chat_id)

    def set_language(self, chat_id: int, language: str) -> None:
        now = _now()
        with self._lock, self._conn:
            self._conn.execute("INSERT INTO users (chat_id, language, created_at, last_seen) "
                               "VALUES (?, ?, ?, ?) ON CONFLICT(chat_id) DO UPDATE SET language = ?, "
                               "last_seen = ?", (chat_id, language, now, now, language, now))

    # -- privacy ------------------------------------------------------------------------------

    def remember_message(self, chat_id: int, message_id: int) -> None:
        """Keep a message's id (not its content) while Telegram still lets the bot delete it."""
        with self._lock, self._conn:
            self._conn.execute("INSERT OR IGNORE INTO recent_messages VALUES (?, ?, ?)",
                               (chat_id, message_id, _now()))

    def forget_user(self, chat_id: int) -> list[int]:
        """Delete every row about this person, in every table that holds a chat id; return the
        ids of their recent messages (under 48 hours old) so the chat can be cleaned too."""
        cutoff = _now(-DELETABLE_FOR)
        with self._lock, self._conn:
            recent = [r[0] for r in self._conn.execute(
                "SELECT message_id FROM recent_messages WHERE chat_id = ? AND at >= ? ORDER BY message_id",
                (chat_id, cutoff))]
            for table, column in self._person_columns():
                self._conn.execute(f'DELETE FROM "{table}" WHERE "{column}" = ?', (chat_id,))
        return recent

    def _person_columns(self) -> list[tuple[str, str]]:
        """(table, column) for every column that identifies a person, found from the schema, so
        that tables added by later migrations are covered without being listed here."""
        found = []
        tables = [r[0] for r in self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'schema_version'")]
        for table in tables:
            for column in self._conn.execute(f'PRAGMA table_info("{table}")'):
                if column[1] in PERSON_COLUMNS:
                    found.append((table, column[1]))
        return found

    def purge_expired(self, inactive_after: dt.timedelta,
                      unanswered_for: dt.timedelta = dt.timedelta(days=30)) -> dict[str, int]:
        """Retention: message ids past 48 hours, unanswered questions past `unanswered_for`,
        people inactive longer than `inactive_after`."""
        with self._lock, self._conn:
            messages = self._conn.execute("DELETE FROM recent_messages WHERE at < ?",
                                          (_now(-DELETABLE_FOR),)).rowcount
            questions = self._conn.execute("DELETE FROM unanswered WHERE asked_on < ?",
                                           ((dt.date.today() - unanswered_for).isoformat(),)).rowcount
            stale = [r[0] for r in self._conn.execute("SELECT chat_id FROM users WHERE last_seen < ?",
                                                      (_now(-inactive_after),))]
        for chat_id in stale:
            self.forget_user(chat_id)
        return {"message_ids": messages, "unanswered_questions": questions, "inactive_people": len(stale)}

    # -- what staff need ----------------------------------------------------------------------

    def record_unanswered(self, text: str, lang: str, outcome: str) -> None:
        """Keep a question the bot could not answer: already masked, with no user id."""
        with self._lock, self._conn:
            self._conn.execute("INSERT INTO unanswered (asked_on, lang, outcome, text) VALUES (?, ?, ?, ?)",
                               (dt.date.today().isoformat(), lang, outcome, text))

    def unanswered_since(self, since: dt.date) -> list[tuple[str, str, str, str]]:
        """(asked_on, lang, outcome, text) of questions recorded on or after `since`."""
        with self._lock:
            return list(self._conn.execute(
                "SELECT asked_on, lang, outcome, text FROM unanswered WHERE asked_on >= ? ORDER BY id",
                (since.isoformat(),)))

    def record_feedback(self, entry: str, lang: str, helpful: bool) -> None:
        column = "helpful" if helpful else "unhelpful"
        with self._lock, self._conn:
            self._conn.execute(f"INSERT INTO feedback (entry, lang, {column}) VALUES (?, ?, 1) "
                               f"ON CONFLICT(entry, lang) DO UPDATE SET {column} = {column} + 1",
                               (entry, lang))

    def feedback_counts(self) -> list[tuple[str, str, int, int]]:
        """(entry, lang, helpful, unhelpful), most "no" votes first."""
        with self._lock:
            return list(self._conn.execute(
                "SELECT entry, lang, helpful, unhelpful FROM feedback ORDER BY unhelpful DESC, entry, lang"))

    # -- roles --------------------------------------------------------------------------------

    def roles_of(self, chat_id: int) -> set[str]:
        with self._lock:
            return {r[0] for r in self._conn.execute("SELECT role FROM roles WHERE chat_id = ?", (chat_id,))}

    def grant(self, chat_id: int, role: str) -> bool:
        """Give a role; returns False if the person already had it."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        with self._lock, self._conn:
            return self._conn.execute("INSERT OR IGNORE INTO roles VALUES (?, ?, ?)",
                                      (chat_id, role, _now())).rowcount == 1

    def revoke(self, chat_id: int, role: str) -> bool:
        """Take a role away; returns False if the person did not have it."""
        with self._lock, self._conn:
            return self._conn.execute("DELETE FROM roles WHERE chat_id = ? AND role = ?",
                                      (chat_id, role)).rowcount == 1

    def people_with_roles(self) -> list[tuple[int, str]]:
        with self._lock:
            return list(self._conn.execute("SELECT chat_id, role FROM roles ORDER BY role, chat_id"))
