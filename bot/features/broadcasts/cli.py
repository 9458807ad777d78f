"""`python main.py broadcast send|list|status|resume|cancel`: announcements from the command line.

Imported by `python main.py` for every command, so it stays light: the senders (delivery.py,
python-telegram-bot; whatsapp.py, aiohttp) are imported only when something is sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path

from ...languages import LANGUAGES, NATIVE_NAMES
from ...storage import Database
from ...telegram_html import to_plain
from .content import Announcement, AnnouncementError, _utc_text, load_announcement, render

log = logging.getLogger(__name__)


# -- the command line ---------------------------------------------------------------------------------

def add_cli(sub) -> None:
    """Register `python main.py broadcast ...` on the main parser's subcommands."""
    parser = sub.add_parser("broadcast", help="send an announcement to subscribers; list, follow, "
                                              "resume or cancel announcements")
    commands = parser.add_subparsers(dest="broadcast_command", required=True)
    send = commands.add_parser("send", help="send (or schedule) the announcement in a YAML file")
    send.add_argument("file", help="YAML with topic, text per language, optional send_at")
    send.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    send.add_argument("--dry-run", action="store_true",
                      help="check the file and show each language's message and recipients; send nothing")
    send.add_argument("--rate", type=_rate, help="messages per second in total (default: "
                      "BOT_BROADCAST_RATE, else 30)")
    listing = commands.add_parser("list", help="the latest announcements")
    listing.add_argument("--limit", type=int, default=20)
    status = commands.add_parser("status", help="everything about one announcement")
    status.add_argument("id", type=int)
    resume = commands.add_parser("resume", help="continue an interrupted or paused announcement")
    resume.add_argument("id", type=int)
    resume.add_argument("--resend-unknown", action="store_true",
                        help="also send again to the people it may not have reached (a crash during "
                             "their send): they may get it twice")
    resume.add_argument("--rate", type=_rate, help="messages per second in total")
    cancel = commands.add_parser("cancel", help="cancel a scheduled, paused or running announcement")
    cancel.add_argument("id", type=int)
    parser.set_defaults(func=cmd_broadcast)


def _rate(value: str) -> float:
    import argparse

    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 < rate <= 1000:
        raise argparse.ArgumentTypeError("the rate is messages per second, above 0 and at most 1000")
    return rate


def cmd_broadcast(args, settings) -> int:
    from ...i18n import load_catalogs

    load_catalogs()
    db = Database(settings.database)
    try:
        command = args.broadcast_command
        if command == "send":
            return _cli_send(args, settings, db)
        if command == "list":
            return _cli_list(db, args.limit)
        if command == "status":
            return _cli_status(db, args.id)
        if command == "resume":
            return _cli_resume(args, settings, db)
        return _cli_cancel(db, args.id)
    finally:
        db.close()


def _cli_send(args, settings, db: Database) -> int:
    try:
        announcement = load_announcement(Path(args.file))
    except AnnouncementError as exc:
        print(exc, file=sys.stderr)
        print("Nothing was sent.", file=sys.stderr)
        return 2
    counts = db.audience(announcement.topic)
    total = sum(counts.get(lg, 0) for lg in LANGUAGES)
    print(_summary(announcement, counts, db.audience_by_channel(announcement.topic), settings))
    if args.dry_run:
        for lang in LANGUAGES:
            print(f"\n----- {NATIVE_NAMES[lang]} ({counts.get(lang, 0)}) -----")
            print(to_plain(render(announcement.topic, announcement.texts, announcement.default_language,
                                  lang)))
        print("\nDry run: nothing was sent or recorded.")
        return 0
    if total == 0 and announcement.send_at is None:
        print("Nobody is subscribed to this topic: nothing to send.", file=sys.stderr)
        return 1
    when = ("at " + announcement.send_at.astimezone().strftime("%Y-%m-%d %H:%M %Z")
            if announcement.send_at else "now")
    if not args.yes and not _confirm(f"Send to {total} people {when}? [y/N] "):
        print("Nothing was sent.", file=sys.stderr)
        return 1
    composed_by = "cli:" + _account()
    if announcement.send_at is not None:
        broadcast_id = db.create_broadcast(topic=announcement.topic, texts=announcement.texts,
                                           default_language=announcement.default_language,
                                           composed_by=composed_by, send_at=_utc_text(announcement.send_at))
        print(f"Scheduled as announcement #{broadcast_id} for {when}. The running bot (python main.py "
              f"run) sends it then, or when it next starts. Cancel with: python main.py broadcast "
              f"cancel {broadcast_id}")
        return 0
    _require_channel(settings)
    import time

    from .delivery import LEASE_SECONDS, new_owner

    owner = new_owner()
    broadcast_id = db.create_broadcast(topic=announcement.topic, texts=announcement.texts,
                                       default_language=announcement.default_language,
                                       composed_by=composed_by, lease_owner=owner,
                                       lease_until=time.time() + LEASE_SECONDS)
    print(f"Announcement #{broadcast_id}: sending.", flush=True)
    return _run_sender(settings, db, broadcast_id, owner, args.rate, resend_unknown=False)


def _cli_resume(args, settings, db: Database) -> int:
    record = db.broadcast(args.id)
    if record is None:
        print(f"There is no announcement #{args.id} (see: python main.py broadcast list).", file=sys.stderr)
        return 2
    if record.status in ("done", "cancelled"):
        print(f"Announcement #{args.id} is {record.status}: nothing to resume.", file=sys.stderr)
        return 1
    if record.status == "scheduled" and record.send_at > _utc_text(dt.datetime.now(dt.timezone.utc)):
        print(f"Announcement #{args.id} is scheduled for {_local(record.send_at)}; it is not due yet.",
              file=sys.stderr)
        return 1
    _require_channel(settings)
    from .delivery import new_owner

    return _run_sender(settings, db, args.id, new_owner(), args.rate, resend_unknown=args.resend_unknown)


def _require_channel(settings) -> None:
    """Announcements need Telegram's token, WhatsApp's or Twilio's settings (README: set-up)."""
    if getattr(settings, "whatsapp_configured", False):
        from . import whatsapp  # noqa: F401 - registers the WhatsApp lane
    if getattr(settings, "sms_configured", False):
        from . import sms  # noqa: F401 - registers the SMS lane
    if not (getattr(settings, "whatsapp_configured", False) or getattr(settings, "sms_configured", False)):
        settings.require_token()


def _run_sender(settings, db: Database, broadcast_id: int, owner: str, rate: float | None,
                resend_unknown: bool) -> int:
    import asyncio

    from .delivery import send_from_command_line

    rate = rate or settings.broadcast_rate
    outcome = asyncio.run(send_from_command_line(settings, db, broadcast_id, owner=owner, rate=rate,
                                                 resend_unknown=resend_unknown))
    if outcome.status == "busy":
        print(f"Announcement #{broadcast_id} is being sent by another process (the bot?). Follow it "
              f"with: python main.py broadcast status {broadcast_id}", file=sys.stderr)
        return 1
    print(_report(db, broadcast_id, outcome))
    if outcome.status == "paused":
        print(f"Paused. To continue: python main.py broadcast resume {broadcast_id}")
        return 130
    if outcome.status in ("failed", "lost"):
        print(f"Stopped: {outcome.error or 'another process took it over'}. To continue: "
              f"python main.py broadcast resume {broadcast_id}", file=sys.stderr)
        return 1
    return 0


def _cli_list(db: Database, limit: int) -> int:
    records = db.broadcasts(limit)
    if not records:
        print("No announcements yet.")
        return 0
    print(f"{'ID':>5}  {'STATUS':<10} {'TOPIC':<7} {'COMPOSED (local time)':<22} {'BY':<22} SENT/AUDIENCE")
    for b in records:
        counts = db.recipient_counts(b.id)
        audience = "-" if b.audience is None else f"{counts.get('sent', 0)}/{b.audience}"
        status = b.status if b.status != "scheduled" else f"scheduled {_local(b.send_at)}"
        print(f"{b.id:>5}  {status:<10} {b.topic:<7} {_local(b.composed_at):<22} {b.composed_by[:22]:<22} "
              f"{audience}")
    return 0


STATE_NAMES = {
    "sent": "sent",
    "blocked": "blocked the bot or left Telegram",
    "failed": "failed",
    "skipped": "skipped (unsubscribed or cancelled)",
    "unknown": "may not have arrived (stopped while sending)",
    "pending": "not sent yet",
    "sending": "being sent",
}


def _cli_status(db: Database, broadcast_id: int) -> int:
    b = db.broadcast(broadcast_id)
    if b is None:
        print(f"There is no announcement #{broadcast_id} (see: python main.py broadcast list).", file=sys.stderr)
        return 2
    print(f"Announcement #{b.id}: {b.status}")
    print(f"  topic          {b.topic}")
    print(f"  composed       {_local(b.composed_at)} by {b.composed_by}")
    if b.status == "scheduled":
        print(f"  scheduled for  {_local(b.send_at)}")
    if b.started_at:
        print(f"  started        {_local(b.started_at)}")
    if b.finished_at:
        print(f"  finished       {_local(b.finished_at)}")
    languages = ", ".join(f"{lg}{' (default)' if lg == b.default_language else ''}" for lg in LANGUAGES
                          if lg in b.texts)
    print(f"  texts          {languages}; the others get the {b.default_language} text")
    if b.audience is None:
        counts = db.audience(b.topic)
        print(f"  audience       not fixed yet; {_subscribers(sum(counts.values()))} now")
        return 0
    print(f"  audience       {b.audience}")
    rows = db.recipient_breakdown(b.id)
    totals: dict[str, int] = {}
    errors: dict[tuple[str, str], int] = {}
    by_language: dict[str, dict[str, int]] = {}
    for lang, state, error, n in rows:
        totals[state] = totals.get(state, 0) + n
        by_language.setdefault(lang, {})[state] = by_language.get(lang, {}).get(state, 0) + n
        if error:
            errors[(state, error)] = errors.get((state, error), 0) + n
    for state, label in STATE_NAMES.items():
        if totals.get(state):
            detail = ", ".join(f"{error}: {n}" for (s, error), n in sorted(errors.items()) if s == state)
            print(f"  {label:<45} {totals[state]:>7}" + (f"  ({detail})" if detail else ""))
    print("  by language:   " + "; ".join(
        f"{lang} " + ", ".join(f"{state} {n}" for state, n in sorted(states.items()))
        for lang, states in sorted(by_language.items())))
    if totals.get("unknown"):
        print(f"  To send again to those it may not have reached (they may get it twice): "
              f"python main.py broadcast resume {b.id} --resend-unknown")
    if b.status in ("sending", "paused") and not b.lease_owner:
        print(f"  Interrupted. The bot resumes it when it starts, or: python main.py broadcast resume {b.id}")
    return 0


def _cli_cancel(db: Database, broadcast_id: int) -> int:
    record = db.broadcast(broadcast_id)
    if record is None:
        print(f"There is no announcement #{broadcast_id}.", file=sys.stderr)
        return 2
    if not db.cancel_broadcast(broadcast_id):
        print(f"Announcement #{broadcast_id} is {record.status}: it can't be cancelled.", file=sys.stderr)
        return 1
    counts = db.recipient_counts(broadcast_id)
    print(f"Announcement #{broadcast_id} is cancelled" +
          (f" ({_plural('{n} person had already got it', '{n} people had already got it', counts.get('sent', 0))})."
           if record.audience is not None else "."))
    return 0


def _plural(singular: str, plural: str, n: int) -> str:
    """English with Babel's plural rules, from the catalogs (the command line speaks English)."""
    from ...i18n import ngettext, use_language

    with use_language("en"):
        return ngettext(singular, plural, n)


def _subscribers(n: int) -> str:
    return _plural("{n} subscriber", "{n} subscribers", n)


def _summary(announcement: Announcement, counts: dict[str, int],
             by_channel: dict[tuple[str, str], int] | None = None, settings=None) -> str:
    total = sum(counts.get(lg, 0) for lg in LANGUAGES)
    by_channel = by_channel or {}
    channels = [("telegram", "Telegram"), ("whatsapp", "WhatsApp")]
    if any(ch == "sms" and n for (ch, _lg), n in by_channel.items()):   # only when someone gets SMS
        channels.append(("sms", "SMS"))
    lines = [f"Topic: {announcement.topic} ({_subscribers(total)})"]
    for lg in LANGUAGES:
        own = "own text" if lg in announcement.texts else f"gets the {announcement.default_language} text"
        split = "  (" + ", ".join(f"{name} {by_channel.get((ch, lg), 0)}" for ch, name in channels) + ")"
        lines.append(f"  {NATIVE_NAMES[lg]:<15} {counts.get(lg, 0):>7}  {own}{split}")
    if any(ch == "whatsapp" and n for (ch, _lg), n in by_channel.items()):
        templates = settings.whatsapp_template_map() if settings is not None else {}
        lines.append("WhatsApp: who has not written in 24 hours gets the approved template "
                     "(WHATSAPP_TEMPLATES) with the text in it.")
        missing = [NATIVE_NAMES[lg] for lg in LANGUAGES if lg not in templates]
        if "en" not in templates:
            lines.append("  No English template: outside the 24 hours, languages without a template "
                         "can't be reached on WhatsApp.")
        elif missing:
            lines.append(f"  No template for {', '.join(missing)}: they get the English template.")
        if not getattr(settings, "whatsapp_configured", False):
            lines.append("  WhatsApp is not configured here: its subscribers will be skipped.")
    if announcement.send_at:
        lines.append("Send at: " + announcement.send_at.astimezone().strftime("%Y-%m-%d %H:%M %Z"))
    return "\n".join(lines)


def _report(db: Database, broadcast_id: int, outcome) -> str:
    counts = db.recipient_counts(broadcast_id)
    record = db.broadcast(broadcast_id)
    minutes, seconds = divmod(int(outcome.elapsed), 60)
    lines = [f"Announcement #{broadcast_id} ({record.topic}): {record.status} after {minutes}:{seconds:02d}, "
             f"{outcome.sent_rate:.1f} messages per second."]
    for state, label in STATE_NAMES.items():
        if counts.get(state):
            lines.append(f"  {label:<45} {counts[state]:>7}")
    lines.append(f"  429 answers from Telegram (waited as asked)  {outcome.flood_waits:>7}")
    if outcome.interrupted:
        lines.append(f"  {outcome.interrupted} recipient(s) were being sent when it was interrupted; they "
                     "are counted as 'may not have arrived' and were not sent again.")
    return "\n".join(lines)


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        print("Add --yes to send without being asked (standard input is not a terminal).", file=sys.stderr)
        return False
    return input(question).strip().lower() in ("y", "yes")


def _account() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _local(stored: str | None) -> str:
    if not stored:
        return "-"
    return dt.datetime.fromisoformat(stored).astimezone().strftime("%Y-%m-%d %H:%M")
