"""SQLite storage: one file, created on first run, readable by its owner only.

It keeps the least that works: per person the chat id, the chosen language and dates (later
issues add subscriptions and roles). Never message text. Migrations are versioned in code: each
is applied once, in order, inside a transaction.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import sqlite3
import threading
import weakref
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
    # subscriptions (issue 6): who asked for announcements, on which topics, in which language.
    # Nothing else: no name, no phone. `active` is 0 once Telegram says the bot cannot reach them.
    """
    CREATE TABLE subscriptions (
        chat_id         INTEGER PRIMARY KEY,
        language        TEXT NOT NULL,     -- the language they were answered in when subscribing
        topics          TEXT NOT NULL,     -- comma-separated: alerts, news
        active          INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL,
        inactive_since  TEXT,              -- when Telegram answered "blocked" or "deactivated"
        resume_asked_at TEXT               -- when they came back and were asked whether to resume
    );
    """,
    # broadcasts (issue 6): each announcement, its texts, and per recipient what happened
    """
    CREATE TABLE broadcasts (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        topic            TEXT NOT NULL,
        texts            TEXT NOT NULL,    -- JSON: language -> Telegram HTML
        default_language TEXT NOT NULL,    -- the text for the languages left out
        composed_by      TEXT NOT NULL,    -- staff: 'telegram:<user id>' or 'cli:<account>'
        composed_at      TEXT NOT NULL,
        send_at          TEXT NOT NULL,    -- UTC; the composing time when sent at once
        status           TEXT NOT NULL CHECK (status IN ('scheduled', 'sending', 'paused', 'done',
                                                         'cancelled')),
        started_at       TEXT,
        finished_at      TEXT,
        audience         INTEGER,          -- recipients when sending started
        report_chat      INTEGER,          -- the organizer's chat for progress and the report
        report_language  TEXT,
        progress_message INTEGER,
        lease_owner      TEXT,             -- the process sending it now: 'host:pid:nonce'
        lease_until      REAL              -- unix time; another process may take over after it
    );
    CREATE INDEX broadcasts_by_status ON broadcasts (status, send_at);
    CREATE TABLE broadcast_recipients (
        broadcast_id INTEGER NOT NULL REFERENCES broadcasts (id),
        chat_id      INTEGER NOT NULL,
        language     TEXT NOT NULL,        -- the language of the copy this person gets
        state        TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'blocked', 'failed',
                                                    'skipped', 'unknown')),
        error        TEXT,                 -- the kind of error only, e.g. 'blocked', 'network'
        attempts     INTEGER NOT NULL DEFAULT 0,
        updated_at   TEXT NOT NULL,
        PRIMARY KEY (broadcast_id, chat_id)
    ) WITHOUT ROWID;
    CREATE INDEX broadcast_recipients_by_state ON broadcast_recipients (broadcast_id, state);
    CREATE TABLE broadcast_drafts (
        chat_id    INTEGER PRIMARY KEY,    -- the organizer composing it in Telegram
        topic      TEXT NOT NULL,
        texts      TEXT NOT NULL,          -- JSON: language -> Telegram HTML
        awaiting   TEXT,                   -- the language whose text comes next; NULL: previewed
        updated_at TEXT NOT NULL
    );
    """,
    # 7: channels (issue 12). A person is (channel, address): the same human on Telegram and on
    # WhatsApp is two people. Every other table keeps `chat_id`, the person's key: for Telegram it
    # is the Telegram chat id itself (as before, so every existing user, subscription, role and
    # delivery record stays as it was); for other channels it is a negative number handed out by
    # `person_sequence` (Telegram private chat ids are positive, and the bot keeps no group).
    # `address` is the channel's own id: for WhatsApp the wa_id, which is a phone number: it is
    # in this table only, and /forget deletes the row with everything else.
    """
    CREATE TABLE people (
        chat_id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,         -- 'telegram', 'whatsapp', 'terminal'
        address TEXT NOT NULL,         -- the channel's id for the person (WhatsApp: a phone number)
        UNIQUE (channel, address)
    );
    INSERT OR IGNORE INTO people (chat_id, channel, address)
        SELECT chat_id, CASE WHEN chat_id = 0 THEN 'terminal' ELSE 'telegram' END, CAST(chat_id AS TEXT)
        FROM (SELECT chat_id FROM users UNION SELECT chat_id FROM roles
              UNION SELECT chat_id FROM subscriptions);
    CREATE TABLE person_sequence (last INTEGER NOT NULL);
    INSERT INTO person_sequence VALUES (0);
    -- webhook deliveries already handled (Meta retries them): a hash of the message id, never the
    -- id itself (a WhatsApp message id encodes the sender's phone number), kept 48 hours
    CREATE TABLE handled_messages (
        channel TEXT NOT NULL,
        digest  TEXT NOT NULL,
        at      TEXT NOT NULL,
        PRIMARY KEY (channel, digest)
    ) WITHOUT ROWID;
    """,
    # 8: "Did this help?" votes (issue 14): one per person and answer, so that pressing 👎 thirty
    # times counts once and pressing 👍 after it changes the vote. The person's key is here only
    # for that and for /forget (which deletes the vote); reports read counts (feedback_counts).
    # The `feedback` table keeps the counts of votes given before, which have no person.
    """
    CREATE TABLE votes (
        chat_id INTEGER NOT NULL,
        entry   TEXT NOT NULL,
        lang    TEXT NOT NULL,
        helpful INTEGER NOT NULL CHECK (helpful IN (0, 1)),
        PRIMARY KEY (chat_id, entry)
    ) WITHOUT ROWID;
    """,
    # 9: WhatsApp broadcasts (issue 12): the message id WhatsApp gave each announcement sent, as a
    # hash (a WhatsApp message id encodes the phone number), so that the statuses Meta posts later
    # ("failed") update that person's delivery record. Deleted with the delivery records.
    """
    CREATE TABLE broadcast_messages (
        digest       TEXT PRIMARY KEY,
        broadcast_id INTEGER NOT NULL,
        chat_id      INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
]
ROLES = ("editor", "organizer", "admin")
CHANNELS = ("telegram", "whatsapp", "terminal", "web", "sms")   # web: a random session id; sms: a phone number
HANDLED_FOR = dt.timedelta(hours=48)   # how long a handled webhook message id is remembered
log = logging.getLogger(__name__)

# Telegram lets a bot delete messages in a private chat only while they are under 48 hours old.
DELETABLE_FOR = dt.timedelta(hours=48)


# Columns that hold a Telegram user or chat id: /forget deletes rows by these.
PERSON_COLUMNS = {"chat_id", "user_id"}


class StorageError(RuntimeError):
    """The database cannot be used; the message says why and what to do."""


_READ_ONLY = ("the database {path} is read-only: the bot could not record anything (languages, "
              "subscriptions, roles, /forget). Give the account that runs the bot write access to "
              "the file and its folder ({folder}), or set BOT_DATABASE to a writable place.")


def _read_only(exc: sqlite3.Error) -> bool:
    return (getattr(exc, "sqlite_errorcode", None) in (8, 776, 1032, 1288, 1544, 2056)   # SQLITE_READONLY*
            or "readonly" in str(exc) or "read-only" in str(exc))


_OPEN: "weakref.WeakSet[Database]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Close every database still open when the process exits (the bot's threads may hold one)."""
    for db in list(_OPEN):
        db._close_at_exit()


@dataclass(frozen=True)
class User:
    chat_id: int
    language: str | None
    created_at: str
    last_seen: str


@dataclass(frozen=True)
class Subscription:
    chat_id: int
    language: str
    topics: frozenset[str]
    active: bool
    created_at: str
    updated_at: str
    inactive_since: str | None
    resume_asked_at: str | None

    @classmethod
    def from_row(cls, row) -> "Subscription":
        return cls(row[0], row[1], frozenset(t for t in row[2].split(",") if t), bool(row[3]), *row[4:])


@dataclass(frozen=True)
class Broadcast:
    id: int
    topic: str
    texts: dict[str, str]
    default_language: str
    composed_by: str
    composed_at: str
    send_at: str
    status: str
    started_at: str | None
    finished_at: str | None
    audience: int | None
    report_chat: int | None
    report_language: str | None
    progress_message: int | None
    lease_owner: str | None
    lease_until: float | None

    @classmethod
    def from_row(cls, row) -> "Broadcast":
        import json

        return cls(row[0], row[1], json.loads(row[2]), *row[3:])


@dataclass(frozen=True)
class Draft:
    chat_id: int
    topic: str
    texts: dict[str, str]
    awaiting: str | None
    updated_at: str

    @classmethod
    def from_row(cls, row) -> "Draft":
        import json

        return cls(row[0], row[1], json.loads(row[2]), row[3], row[4])


# Broadcasts are delivered on Telegram, WhatsApp and SMS: subscribers on other channels are left out
# of the audience (those channels do not offer /subscribe), never sent on another channel.
BROADCAST_CHANNELS = ("telegram", "whatsapp", "sms")
_DELIVERABLE = ("s.chat_id NOT IN (SELECT chat_id FROM people WHERE channel NOT IN ('telegram', "
                  "'whatsapp', 'sms'))")
# A person key's channel in SQL: Telegram for keys that were never registered (as channel_of()).
_CHANNEL_OF = "COALESCE((SELECT p.channel FROM people p WHERE p.chat_id = {0}), 'telegram')"


def _now(delta: dt.timedelta = dt.timedelta(0)) -> str:
    return (dt.datetime.now(dt.timezone.utc) + delta).replace(microsecond=0).isoformat()


class Database:
    """A small synchronous wrapper around one SQLite file (fast local calls, one lock)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.RLock()
        self._identity: tuple[int, int] | None = None   # (device, inode) of the file in use
        self._closed = False
        self._open()
        if str(self.path) != ":memory:":
            _OPEN.add(self)   # closed at exit, so that the -wal file is folded in and removed

    def _open(self) -> None:
        memory = str(self.path) == ":memory:"
        try:
            if not memory:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if not self.path.exists():
                    os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
                self._owner_only()   # an existing file others could read; SQLite gives -wal/-shm its mode
            old_umask = os.umask(0o077)  # the -wal/-journal files too
            try:
                self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=5)
                self._conn.execute("PRAGMA secure_delete=ON")   # deleted rows are overwritten, not left
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA foreign_keys=ON")
                self._migrate()
                if not memory:
                    self._check_writable()
            finally:
                os.umask(old_umask)
            if not memory:
                self._owner_only()
                found = os.stat(self.path)
                self._identity = (found.st_dev, found.st_ino)
        except sqlite3.DatabaseError as exc:
            if getattr(self, "_conn", None) is not None:
                self._conn.close()
            if _read_only(exc):
                raise StorageError(_READ_ONLY.format(path=self.path, folder=self.path.parent)) from exc
            raise StorageError(f"cannot open the database {self.path}: {exc}. If the file is "
                               "damaged, move it away and start again (a new one is created), or "
                               "restore a backup.") from exc
        except OSError as exc:
            raise StorageError(f"cannot create the database {self.path}: {exc.strerror}. Check "
                               "the folder exists, is writable and the disk is not full.") from exc

    def _owner_only(self) -> None:
        """The database and its -wal, -shm and -journal files: readable by their owner only."""
        for name in ("", "-wal", "-shm", "-journal"):
            file = Path(str(self.path) + name)
            try:
                mode = file.stat().st_mode
                if mode & 0o077:
                    os.chmod(file, mode & 0o600)
            except FileNotFoundError:
                continue
            except PermissionError:   # not ours: the read-only check says what to do
                log.warning("cannot make %s readable by its owner only (it belongs to another "
                            "account)", file)

    def _check_writable(self) -> None:
        """A database the bot cannot write is found at start, not on every message."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:   # a write that changes nothing, rolled back: it fails on a read-only file
                self._conn.execute("UPDATE schema_version SET version = version")
            finally:
                self._conn.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            if _read_only(exc):
                raise
            # "database is locked": another process is writing, so it can be written

    def check_file(self) -> None:
        """Notice that the database file was deleted or replaced while the bot runs: say so
        loudly, and open the file now at the path, so that the bot and any command run meanwhile
        use one database again (instead of the bot writing to a file nobody can see)."""
        if self._identity is None or self._closed:
            return
        try:
            found = os.stat(self.path)
            now = (found.st_dev, found.st_ino)
        except FileNotFoundError:
            now = None
        if now == self._identity:
            return
        with self._lock:
            if self._identity is None or self._closed:
                return
            log.critical("THE DATABASE FILE %s WAS DELETED OR REPLACED WHILE THE BOT WAS RUNNING (%s). "
                         "What the bot recorded in the old file is not in the file now at that path. "
                         "The bot now uses %s. If this was not on purpose: stop the bot, put the right "
                         "file back (from a backup) and start it again.", self.path,
                         "the file is gone" if now is None else "another file is at its path",
                         "a new, empty database there" if now is None else "the file now there")
            try:   # empty our -wal (through our own handle) before letting go: SQLite leaves the
                # -wal of a moved database in place, and the file now at the path must not read it
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._identity = None
            self._open()

    def _fold_log(self) -> None:
        """After deleting rows: copy the write-ahead log into the database and empty it, so that
        no old copy of them stays in the -wal file (secure_delete overwrites them in the database)."""
        busy, _pages, _done = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            log.warning("after a deletion the database's write-ahead log could not be emptied yet "
                        "(another process is reading); it is emptied at the next deletion or when "
                        "the bot stops")

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
        """Fold the write-ahead log in and close (the -wal and -shm files are removed)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._conn.close()
            _OPEN.discard(self)

    def _close_at_exit(self) -> None:
        if self._lock.acquire(timeout=2):   # a thread stuck inside a call: leave it to SQLite
            try:
                self.close()
            finally:
                self._lock.release()

    # -- users ----------------------------------------------------------------------------------

    def get_user(self, chat_id: int) -> User | None:
        with self._lock:
            row = self._conn.execute("SELECT chat_id, language, created_at, last_seen FROM users "
                                     "WHERE chat_id = ?", (chat_id,)).fetchone()
        return User(*row) if row else None

    def touch_user(self, chat_id: int) -> User:
        """Record that the person wrote now; creates their row on first contact."""
        self.check_file()
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

    # -- people and channels --------------------------------------------------------------------

    def person(self, channel: str, address: str | int) -> int:
        """The person key (the `chat_id` of every table) for this channel's id, created on first
        contact. Telegram's key is the chat id itself; other channels get a new negative key."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        address = str(address)
        with self._lock, self._conn:
            row = self._conn.execute("SELECT chat_id FROM people WHERE channel = ? AND address = ?",
                                     (channel, address)).fetchone()
            if row:
                return row[0]
            if channel == "telegram":
                key = int(address)
            elif channel == "terminal":
                key = int(address) if address.lstrip("-").isdigit() else 0
            else:
                key = -self._conn.execute("UPDATE person_sequence SET last = last + 1 "
                                          "RETURNING last").fetchone()[0]
            self._conn.execute("INSERT OR IGNORE INTO people (chat_id, channel, address) VALUES (?, ?, ?)",
                               (key, channel, address))
            return key

    def address_of(self, chat_id: int) -> tuple[str, str] | None:
        """(channel, address) of a person key, None if unknown (or forgotten)."""
        with self._lock:
            row = self._conn.execute("SELECT channel, address FROM people WHERE chat_id = ?",
                                     (chat_id,)).fetchone()
        if row:
            return row[0], row[1]
        return ("telegram", str(chat_id)) if chat_id > 0 else None

    def channel_of(self, chat_id: int) -> str:
        """The channel of a person key: Telegram for chat ids that were never registered."""
        found = self.address_of(chat_id)
        return found[0] if found else ("terminal" if chat_id == 0 else "telegram")

    def claim_message(self, channel: str, message_id: str) -> bool:
        """True the first time a webhook message id is seen (in the last 48 hours): a delivery
        the provider retries is handled once. Stores a hash of the id, never the id."""
        import hashlib

        digest = hashlib.sha256(f"{channel}:{message_id}".encode()).hexdigest()
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM handled_messages WHERE at < ?", (_now(-HANDLED_FOR),))
            return self._conn.execute("INSERT OR IGNORE INTO handled_messages VALUES (?, ?, ?)",
                                      (channel, digest, _now())).rowcount == 1

    def release_message(self, channel: str, message_id: str) -> None:
        """Handling failed: let the provider's retry of this message be handled."""
        import hashlib

        digest = hashlib.sha256(f"{channel}:{message_id}".encode()).hexdigest()
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM handled_messages WHERE channel = ? AND digest = ?",
                               (channel, digest))

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
        with self._lock:
            self._fold_log()
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
                      unanswered_for: dt.timedelta = dt.timedelta(days=30),
                      deliveries_for: dt.timedelta = dt.timedelta(days=30)) -> dict[str, int]:
        """Retention: message ids past 48 hours, unanswered questions past `unanswered_for`,
        per-recipient delivery records of broadcasts finished more than `deliveries_for` ago
        (the broadcast itself, its texts and totals stay), people inactive longer than
        `inactive_after`."""
        with self._lock, self._conn:
            messages = self._conn.execute("DELETE FROM recent_messages WHERE at < ?",
                                          (_now(-DELETABLE_FOR),)).rowcount
            self._conn.execute("DELETE FROM handled_messages WHERE at < ?", (_now(-HANDLED_FOR),))
            questions = self._conn.execute("DELETE FROM unanswered WHERE asked_on < ?",
                                           ((dt.date.today() - unanswered_for).isoformat(),)).rowcount
            deliveries = self._conn.execute(
                "DELETE FROM broadcast_recipients WHERE broadcast_id IN (SELECT id FROM broadcasts "
                "WHERE status IN ('done', 'cancelled') AND finished_at < ?)",
                (_now(-deliveries_for),)).rowcount
            self._conn.execute("DELETE FROM broadcast_messages WHERE broadcast_id IN (SELECT id FROM "
                               "broadcasts WHERE status IN ('done', 'cancelled') AND finished_at < ?)",
                               (_now(-deliveries_for),))
            # an active subscription is an ongoing request to be written to: it is kept (with the
            # person's row) until they unsubscribe, block the bot or send /forget
            stale = [r[0] for r in self._conn.execute(
                "SELECT chat_id FROM users WHERE last_seen < ? AND chat_id NOT IN "
                "(SELECT chat_id FROM subscriptions WHERE active = 1)", (_now(-inactive_after),))]
        for chat_id in stale:
            self.forget_user(chat_id)
        with self._lock:
            self._fold_log()
        return {"message_ids": messages, "unanswered_questions": questions,
                "delivery_records": deliveries, "inactive_people": len(stale)}

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

    def unanswered_id(self, text: str) -> int | None:
        """The newest recorded question with exactly this (masked) text: for /report's buttons."""
        with self._lock:
            row = self._conn.execute("SELECT id FROM unanswered WHERE text = ? ORDER BY id DESC LIMIT 1",
                                     (text,)).fetchone()
        return row[0] if row else None

    def unanswered_question(self, question_id: int) -> tuple[str, str] | None:
        """(lang, text) of a recorded question, if it is still kept."""
        with self._lock:
            row = self._conn.execute("SELECT lang, text FROM unanswered WHERE id = ?", (question_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def drop_unanswered(self, text: str) -> int:
        """A question staff taught the bot is answered now: drop its records from the report."""
        with self._lock, self._conn:
            return self._conn.execute("DELETE FROM unanswered WHERE text = ?", (text,)).rowcount

    def record_feedback(self, entry: str, lang: str, helpful: bool, *, chat_id: int) -> None:
        """This person's vote on this answer, replacing any earlier one (one vote per person)."""
        with self._lock, self._conn:
            self._conn.execute("INSERT INTO votes (chat_id, entry, lang, helpful) VALUES (?, ?, ?, ?) "
                               "ON CONFLICT(chat_id, entry) DO UPDATE SET lang = excluded.lang, "
                               "helpful = excluded.helpful", (chat_id, entry, lang, int(helpful)))

    def feedback_counts(self) -> list[tuple[str, str, int, int]]:
        """(entry, lang, helpful, unhelpful), most "no" votes first: counts only, never who."""
        with self._lock:
            return list(self._conn.execute(
                "SELECT entry, lang, SUM(helpful), SUM(unhelpful) FROM ("
                "SELECT entry, lang, helpful, unhelpful FROM feedback UNION ALL "
                "SELECT entry, lang, helpful, 1 - helpful FROM votes) "
                "GROUP BY entry, lang ORDER BY SUM(unhelpful) DESC, entry, lang"))

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

    # -- subscriptions and broadcasts (issue 6) -------------------------------------------------
    # A subscription is a chat id, a language, topics, an active flag and dates. A broadcast keeps
    # its texts and, per recipient, a state written before and after each send (see broadcast.py).

    _SUBSCRIPTION = ("SELECT chat_id, language, topics, active, created_at, updated_at, inactive_since, "
                     "resume_asked_at FROM subscriptions")
    _BROADCAST = ("SELECT id, topic, texts, default_language, composed_by, composed_at, send_at, status, "
                  "started_at, finished_at, audience, report_chat, report_language, progress_message, "
                  "lease_owner, lease_until FROM broadcasts")

    def subscription(self, chat_id: int) -> Subscription | None:
        with self._lock:
            row = self._conn.execute(self._SUBSCRIPTION + " WHERE chat_id = ?", (chat_id,)).fetchone()
        return Subscription.from_row(row) if row else None

    def set_subscription(self, chat_id: int, topics, language: str) -> None:
        """Subscribe to exactly `topics`, active, in `language`; no topics deletes the row."""
        joined = ",".join(sorted(set(topics)))
        now = _now()
        with self._lock, self._conn:
            if not joined:
                self._conn.execute("DELETE FROM subscriptions WHERE chat_id = ?", (chat_id,))
                return
            self._conn.execute(
                "INSERT INTO subscriptions (chat_id, language, topics, active, created_at, updated_at) "
                "VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT(chat_id) DO UPDATE SET language = excluded.language, "
                "topics = excluded.topics, active = 1, updated_at = excluded.updated_at, "
                "inactive_since = NULL, resume_asked_at = NULL", (chat_id, language, joined, now, now))

    def mark_unreachable(self, chat_id: int) -> None:
        """Telegram says the person blocked the bot or their account is gone: send nothing more."""
        now = _now()
        with self._lock, self._conn:
            self._conn.execute("UPDATE subscriptions SET active = 0, inactive_since = ?, updated_at = ?, "
                               "resume_asked_at = NULL WHERE chat_id = ? AND active = 1", (now, now, chat_id))

    def claim_resume_offer(self, chat_id: int) -> bool:
        """True, once, when someone whose announcements stopped writes again."""
        with self._lock, self._conn:
            return self._conn.execute(
                "UPDATE subscriptions SET resume_asked_at = ? WHERE chat_id = ? AND active = 0 AND "
                "resume_asked_at IS NULL", (_now(), chat_id)).rowcount == 1

    def audience(self, topic: str) -> dict[str, int]:
        """Active subscribers to `topic`, by the language they get announcements in (the one they
        chose with /language, else the one they subscribed in)."""
        with self._lock:
            return dict(self._conn.execute(
                "SELECT COALESCE(u.language, s.language) AS lang, COUNT(*) FROM subscriptions s "
                "LEFT JOIN users u ON u.chat_id = s.chat_id WHERE s.active = 1 AND "
                "instr(',' || s.topics || ',', ?) > 0 AND " + _DELIVERABLE + " GROUP BY lang",
                (f",{topic},",)).fetchall())

    def audience_by_channel(self, topic: str) -> dict[tuple[str, str], int]:
        """Active subscribers to `topic` by (channel, language)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT " + _CHANNEL_OF.format("s.chat_id") + ", COALESCE(u.language, s.language) AS lang, "
                "COUNT(*) FROM subscriptions s LEFT JOIN users u ON u.chat_id = s.chat_id WHERE "
                "s.active = 1 AND instr(',' || s.topics || ',', ?) > 0 AND " + _DELIVERABLE +
                " GROUP BY 1, 2", (f",{topic},",)).fetchall()
        return {(channel, lang): n for channel, lang, n in rows}

    def last_seen(self, chat_id: int) -> str | None:
        """When the person last wrote (UTC, as stored), None if unknown."""
        with self._lock:
            row = self._conn.execute("SELECT last_seen FROM users WHERE chat_id = ?", (chat_id,)).fetchone()
        return row[0] if row else None

    def skip_channel(self, broadcast_id: int, channel: str, error: str) -> int:
        """Recipients on `channel` still pending become 'skipped' (the channel is not running)."""
        with self._lock, self._conn:
            return self._conn.execute(
                "UPDATE broadcast_recipients SET state = 'skipped', error = ?, updated_at = ? WHERE "
                "broadcast_id = ? AND state = 'pending' AND " + _CHANNEL_OF.format("broadcast_recipients.chat_id")
                + " = ?", (error, _now(), broadcast_id, channel)).rowcount

    def pending_on(self, broadcast_id: int, channel: str) -> int:
        """How many recipients on `channel` are still pending."""
        with self._lock:
            return self._conn.execute(
                "SELECT COUNT(*) FROM broadcast_recipients WHERE broadcast_id = ? AND state = 'pending' "
                "AND " + _CHANNEL_OF.format("broadcast_recipients.chat_id") + " = ?",
                (broadcast_id, channel)).fetchone()[0]

    def record_broadcast_message(self, broadcast_id: int, chat_id: int, message_id: str) -> None:
        """Keep a hash of the id the channel gave an announcement's message (see migration 9)."""
        import hashlib

        digest = hashlib.sha256(message_id.encode()).hexdigest()
        with self._lock, self._conn:
            self._conn.execute("INSERT OR REPLACE INTO broadcast_messages VALUES (?, ?, ?)",
                               (digest, broadcast_id, chat_id))

    def broadcast_message_failed(self, message_id: str, error: str) -> bool:
        """The channel says an announcement's message was not delivered after all: that person's
        record becomes 'failed' with `error`. False if the id is not an announcement's."""
        import hashlib

        digest = hashlib.sha256(message_id.encode()).hexdigest()
        with self._lock, self._conn:
            row = self._conn.execute("SELECT broadcast_id, chat_id FROM broadcast_messages WHERE digest = ?",
                                     (digest,)).fetchone()
            if row is None:
                return False
            self._conn.execute("UPDATE broadcast_recipients SET state = 'failed', error = ?, updated_at = ? "
                               "WHERE broadcast_id = ? AND chat_id = ? AND state = 'sent'",
                               (error, _now(), row[0], row[1]))
            return True

    def create_broadcast(self, *, topic: str, texts: dict[str, str], default_language: str,
                         composed_by: str, send_at: str | None = None, report_chat: int | None = None,
                         report_language: str | None = None, lease_owner: str | None = None,
                         lease_until: float | None = None) -> int:
        """Record a new broadcast, 'scheduled' (for now when `send_at` is None). A process that will
        send it itself passes its lease, so that no other process starts it first."""
        import json

        now = _now()
        with self._lock, self._conn:
            return self._conn.execute(
                "INSERT INTO broadcasts (topic, texts, default_language, composed_by, composed_at, send_at, "
                "status, report_chat, report_language, lease_owner, lease_until) "
                "VALUES (?, ?, ?, ?, ?, ?, 'scheduled', ?, ?, ?, ?)",
                (topic, json.dumps(texts, ensure_ascii=False, sort_keys=True), default_language,
                 composed_by, now, send_at or now, report_chat, report_language, lease_owner,
                 lease_until)).lastrowid

    def broadcast(self, broadcast_id: int) -> Broadcast | None:
        with self._lock:
            row = self._conn.execute(self._BROADCAST + " WHERE id = ?", (broadcast_id,)).fetchone()
        return Broadcast.from_row(row) if row else None

    def broadcasts(self, limit: int = 20) -> list[Broadcast]:
        with self._lock:
            rows = self._conn.execute(self._BROADCAST + " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [Broadcast.from_row(r) for r in rows]

    def broadcasts_to_send(self) -> list[Broadcast]:
        """Scheduled broadcasts that are due and interrupted ones, urgent alerts first."""
        with self._lock:
            rows = self._conn.execute(
                self._BROADCAST + " WHERE (status = 'scheduled' AND send_at <= ?) OR status = 'sending' "
                "ORDER BY topic != 'alerts', id", (_now(),)).fetchall()
        return [Broadcast.from_row(r) for r in rows]

    def claim_broadcast(self, broadcast_id: int, owner: str, lease_seconds: float,
                        take_over: str | None = None) -> bool:
        """Become the one process sending this broadcast: free, expired, already ours, or held by
        `take_over` (a holder the caller found dead). One atomic UPDATE, so two processes can't
        both win."""
        import time

        now = time.time()
        with self._lock, self._conn:
            return self._conn.execute(
                "UPDATE broadcasts SET lease_owner = ?, lease_until = ? WHERE id = ? AND (lease_owner IS "
                "NULL OR lease_owner = ? OR lease_until < ? OR lease_owner = ?)",
                (owner, now + lease_seconds, broadcast_id, owner, now, take_over)).rowcount == 1

    def renew_broadcast(self, broadcast_id: int, owner: str, lease_seconds: float) -> str | None:
        """Extend our lease; the broadcast's status, or None if another process took it over."""
        import time

        with self._lock, self._conn:
            if self._conn.execute("UPDATE broadcasts SET lease_until = ? WHERE id = ? AND lease_owner = ?",
                                  (time.time() + lease_seconds, broadcast_id, owner)).rowcount != 1:
                return None
            return self._conn.execute("SELECT status FROM broadcasts WHERE id = ?",
                                      (broadcast_id,)).fetchone()[0]

    def release_broadcast(self, broadcast_id: int, owner: str, status: str | None = None) -> None:
        """Give the lease back, setting the status ('done', 'paused') if given."""
        with self._lock, self._conn:
            if status is None:
                self._conn.execute("UPDATE broadcasts SET lease_owner = NULL, lease_until = NULL "
                                   "WHERE id = ? AND lease_owner = ?", (broadcast_id, owner))
            else:
                finished = _now() if status in ("done", "cancelled") else None
                self._conn.execute("UPDATE broadcasts SET lease_owner = NULL, lease_until = NULL, status = ?, "
                                   "finished_at = COALESCE(?, finished_at) WHERE id = ? AND lease_owner = ? "
                                   "AND status NOT IN ('done', 'cancelled')",
                                   (status, finished, broadcast_id, owner))

    def start_broadcast(self, broadcast_id: int, owner: str) -> None:
        """Fix the audience of a scheduled broadcast we hold: one 'pending' row per active
        subscriber to its topic, with their language; the broadcast becomes 'sending'. Atomic."""
        now = _now()
        with self._lock, self._conn:
            row = self._conn.execute("SELECT topic, status FROM broadcasts WHERE id = ? AND lease_owner = ?",
                                     (broadcast_id, owner)).fetchone()
            if row is None or row[1] != "scheduled":
                return
            audience = self._conn.execute(
                "INSERT INTO broadcast_recipients (broadcast_id, chat_id, language, state, updated_at) "
                "SELECT ?, s.chat_id, COALESCE(u.language, s.language), 'pending', ? FROM subscriptions s "
                "LEFT JOIN users u ON u.chat_id = s.chat_id WHERE s.active = 1 AND "
                "instr(',' || s.topics || ',', ?) > 0 AND " + _DELIVERABLE,
                (broadcast_id, now, f",{row[0]},")).rowcount
            self._conn.execute("UPDATE broadcasts SET status = 'sending', started_at = ?, audience = ? "
                               "WHERE id = ?", (now, audience, broadcast_id))

    def resume_broadcast(self, broadcast_id: int, resend_unknown: bool = False) -> int:
        """Before sending again after an interruption: recipients left 'sending' (the process
        stopped during their request, so Telegram may or may not have delivered it) become
        'unknown' and are not sent again, unless `resend_unknown`. Returns how many were left
        'sending'. A paused broadcast becomes 'sending' again."""
        now = _now()
        with self._lock, self._conn:
            interrupted = self._conn.execute(
                "UPDATE broadcast_recipients SET state = 'unknown', error = 'interrupted', updated_at = ? "
                "WHERE broadcast_id = ? AND state = 'sending'", (now, broadcast_id)).rowcount
            if resend_unknown:
                self._conn.execute("UPDATE broadcast_recipients SET state = 'pending', error = NULL, "
                                   "updated_at = ? WHERE broadcast_id = ? AND state = 'unknown'",
                                   (now, broadcast_id))
            self._conn.execute("UPDATE broadcasts SET status = 'sending' WHERE id = ? AND status = 'paused'",
                               (broadcast_id,))
        return interrupted

    def pending_recipients(self, broadcast_id: int, after: int | None = None,
                           limit: int = 500, channel: str | None = None) -> list[tuple[int, str]]:
        """(chat id, language) of recipients still to send, in chat id order after `after`; only
        those on `channel` if given."""
        on_channel = (" AND " + _CHANNEL_OF.format("broadcast_recipients.chat_id") + " = ?") if channel else ""
        with self._lock:
            return list(self._conn.execute(
                "SELECT chat_id, language FROM broadcast_recipients WHERE broadcast_id = ? AND "
                "state = 'pending' AND chat_id > ?" + on_channel + " ORDER BY chat_id LIMIT ?",
                (broadcast_id, after if after is not None else -(2 ** 63), *((channel,) if channel else ()),
                 limit)))

    def begin_send(self, broadcast_id: int, chat_id: int, topic: str, owner: str) -> str:
        """Write 'sending' for one recipient just before the request to Telegram. Returns 'go';
        'skipped' if they unsubscribed or became unreachable since the audience was fixed; 'gone'
        if their row was deleted (/forget) or is not pending; 'lost' if another process holds the
        broadcast now or it was cancelled (then nothing is written)."""
        self.check_file()
        now = _now()
        with self._lock, self._conn:
            if self._conn.execute("SELECT 1 FROM broadcasts WHERE id = ? AND lease_owner = ? AND "
                                  "status = 'sending'", (broadcast_id, owner)).fetchone() is None:
                return "lost"
            went = self._conn.execute(
                "UPDATE broadcast_recipients SET state = 'sending', attempts = attempts + 1, updated_at = ? "
                "WHERE broadcast_id = ? AND chat_id = ? AND state = 'pending' AND EXISTS (SELECT 1 FROM "
                "subscriptions s WHERE s.chat_id = ? AND s.active = 1 AND instr(',' || s.topics || ',', ?) > 0)",
                (now, broadcast_id, chat_id, chat_id, f",{topic},")).rowcount
            if went:
                return "go"
            skipped = self._conn.execute(
                "UPDATE broadcast_recipients SET state = 'skipped', error = 'unsubscribed', updated_at = ? "
                "WHERE broadcast_id = ? AND chat_id = ? AND state = 'pending'",
                (now, broadcast_id, chat_id)).rowcount
            return "skipped" if skipped else "gone"

    def end_send(self, broadcast_id: int, chat_id: int, state: str, error: str | None = None) -> None:
        """Write what happened to one recipient's message: sent, blocked, failed, unknown, or
        pending again (Telegram refused it for now: 429, 5xx)."""
        with self._lock, self._conn:
            self._conn.execute("UPDATE broadcast_recipients SET state = ?, error = ?, updated_at = ? "
                               "WHERE broadcast_id = ? AND chat_id = ?",
                               (state, error, _now(), broadcast_id, chat_id))

    def recipient_counts(self, broadcast_id: int) -> dict[str, int]:
        """How many recipients are in each state."""
        with self._lock:
            return dict(self._conn.execute("SELECT state, COUNT(*) FROM broadcast_recipients WHERE "
                                           "broadcast_id = ? GROUP BY state", (broadcast_id,)).fetchall())

    def recipient_breakdown(self, broadcast_id: int) -> list[tuple[str, str, str | None, int]]:
        """(language, state, error kind, count) rows, for `broadcast status`."""
        with self._lock:
            return list(self._conn.execute(
                "SELECT language, state, error, COUNT(*) FROM broadcast_recipients WHERE broadcast_id = ? "
                "GROUP BY language, state, error ORDER BY language, state, error", (broadcast_id,)))

    def cancel_broadcast(self, broadcast_id: int) -> bool:
        """Cancel a broadcast that has not finished: recipients not yet sent are skipped. A process
        sending it stops at its next check (within seconds)."""
        now = _now()
        with self._lock, self._conn:
            if self._conn.execute("UPDATE broadcasts SET status = 'cancelled', finished_at = ? WHERE id = ? "
                                  "AND status IN ('scheduled', 'sending', 'paused')",
                                  (now, broadcast_id)).rowcount != 1:
                return False
            self._conn.execute("UPDATE broadcast_recipients SET state = 'skipped', error = 'cancelled', "
                               "updated_at = ? WHERE broadcast_id = ? AND state = 'pending'", (now, broadcast_id))
            return True

    def set_progress_message(self, broadcast_id: int, message_id: int) -> None:
        with self._lock, self._conn:
            self._conn.execute("UPDATE broadcasts SET progress_message = ? WHERE id = ?",
                               (message_id, broadcast_id))

    def draft(self, chat_id: int, max_age: dt.timedelta = dt.timedelta(hours=1)) -> Draft | None:
        """The announcement this organizer is composing, unless untouched for `max_age`."""
        with self._lock:
            row = self._conn.execute("SELECT chat_id, topic, texts, awaiting, updated_at FROM "
                                     "broadcast_drafts WHERE chat_id = ? AND updated_at >= ?",
                                     (chat_id, _now(-max_age))).fetchone()
        return Draft.from_row(row) if row else None

    def save_draft(self, chat_id: int, topic: str, texts: dict[str, str], awaiting: str | None) -> None:
        import json

        with self._lock, self._conn:
            self._conn.execute("INSERT OR REPLACE INTO broadcast_drafts VALUES (?, ?, ?, ?, ?)",
                               (chat_id, topic, json.dumps(texts, ensure_ascii=False), awaiting, _now()))

    def take_draft(self, chat_id: int, max_age: dt.timedelta = dt.timedelta(hours=1)) -> Draft | None:
        """Delete the draft and return it (None if there was none): a double press of "Send"
        creates one broadcast, not two."""
        with self._lock, self._conn:
            row = self._conn.execute("DELETE FROM broadcast_drafts WHERE chat_id = ? RETURNING chat_id, "
                                     "topic, texts, awaiting, updated_at", (chat_id,)).fetchone()
        return Draft.from_row(row) if row and row[4] >= _now(-max_age) else None

