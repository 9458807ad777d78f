"""Announcements: topics, how a message looks per language, and announcement files.

Organizers compose in Telegram with /broadcast (composer.py) or from the command line. A language
left out gets the default language's text (English when it was written, else the first language
written), under a header and footer in the recipient's own language (`render`).

From the command line, `python main.py broadcast send FILE` reads the same from YAML:

    topic: alerts                  # alerts | news
    default_language: en           # optional: the text for the languages left out
    send_at: 2026-01-15 18:00      # optional: later (local time, or with an offset: ...-05:00)
    text:
      en: |
        <b>Know your rights workshop</b> on Saturday at 2 pm, ...
      pt: ...

Texts in the file are Telegram HTML, as in the knowledge base (write &amp; for &); texts typed in
Telegram are plain text. Delivery itself (rate, retries, exactly once, resume) is in delivery.py.

This module is light (no engine, no channel library): the composer (composer.py), the senders
(delivery.py for Telegram, whatsapp.py) and the command line (cli.py) all build on it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from ...i18n import N_, _, use_language
from ...languages import DEFAULT_LANGUAGE, LANGUAGES, NATIVE_NAMES
from ...telegram_html import check_html, escape, to_plain, visible_length

log = logging.getLogger(__name__)

MAX_TEXT = 3500   # visible characters of one language's text; with the header and footer < 4,096

# What people can subscribe to. Each broadcast goes to the subscribers of one topic.
TOPICS = ("alerts", "news")
TOPIC_LABELS = {"alerts": N_("Urgent alerts"), "news": N_("Campaign news and events")}
TOPIC_ICONS = {"alerts": "🚨", "news": "📣"}
TOPIC_HEADERS = {"alerts": N_("Urgent alert"), "news": N_("Campaign news")}
FOOTER = N_("You get this because you subscribed. To stop, send /unsubscribe or write STOP.")


def topic_label(topic: str) -> str:
    """The topic's name with its icon, in the current language."""
    return f"{TOPIC_ICONS[topic]} {_(TOPIC_LABELS[topic])}"


def default_language_for(texts: dict[str, str]) -> str:
    """English if it was written, else the first language written."""
    if DEFAULT_LANGUAGE in texts:
        return DEFAULT_LANGUAGE
    return next(lang for lang in LANGUAGES if lang in texts)


def render(topic: str, texts: dict[str, str], default_language: str, language: str) -> str:
    """The message exactly as a recipient whose language is `language` gets it (Telegram HTML):
    a header and a footer in their language around the text in their language, or the default
    language's text if theirs was left out."""
    body = texts.get(language) or texts[default_language]
    with use_language(language):
        return (f"{TOPIC_ICONS[topic]} <b>{escape(_(TOPIC_HEADERS[topic]))}</b>\n\n{body}\n\n"
                f"<i>{escape(_(FOOTER))}</i>")


# -- announcements from a file ----------------------------------------------------------------------

FILE_KEYS = {"topic", "text", "default_language", "send_at"}


class AnnouncementError(ValueError):
    """What is wrong with an announcement file, one problem per line."""


@dataclass(frozen=True)
class Announcement:
    topic: str
    texts: dict[str, str]
    default_language: str
    send_at: dt.datetime | None   # timezone-aware; None: now


def load_announcement(path: Path, now: dt.datetime | None = None) -> Announcement:
    """Read and check an announcement file; `AnnouncementError` lists every problem."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AnnouncementError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise AnnouncementError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise AnnouncementError(f"{path} must be a mapping with topic: and text: (see the README)")
    problems = [f"unknown key {key!r} (the keys are: {', '.join(sorted(FILE_KEYS))})"
                for key in data if key not in FILE_KEYS]
    topic = data.get("topic")
    if topic not in TOPICS:
        problems.append(f"topic must be one of: {', '.join(TOPICS)} (not {topic!r})")
    raw = data.get("text")
    texts: dict[str, str] = {}
    if not isinstance(raw, dict) or not raw:
        problems.append("text: must map languages to texts, e.g. text: {en: ..., pt: ...}")
        raw = {}
    for lang, text in raw.items():
        if lang not in LANGUAGES:
            problems.append(f"text.{lang}: unknown language (the languages are: {', '.join(LANGUAGES)})")
        elif not isinstance(text, str) or not text.strip():
            problems.append(f"text.{lang}: empty; remove it to leave the language out")
        else:
            text = text.strip()
            problems += [f"text.{lang}: {p}" for p in check_html(text)]
            if visible_length(text) > MAX_TEXT:
                problems.append(f"text.{lang}: {visible_length(text)} characters; the limit is {MAX_TEXT}")
            texts[lang] = text
    default = data.get("default_language")
    if default is not None and default not in texts:
        problems.append(f"default_language: {default!r} has no text")
    send_at = None
    if data.get("send_at") is not None:
        try:
            send_at = _parse_time(data["send_at"])
        except ValueError as exc:
            problems.append(f"send_at: {exc}")
        else:
            now = now or dt.datetime.now(dt.timezone.utc)
            if send_at < now - dt.timedelta(minutes=1):
                problems.append(f"send_at: {send_at.isoformat()} is in the past")
            elif send_at <= now:
                send_at = None
    if problems:
        raise AnnouncementError("\n".join(f"{path}: {p}" for p in problems))
    return Announcement(topic, texts, default or default_language_for(texts), send_at)


def _parse_time(value) -> dt.datetime:
    """A YAML time: with an offset, or local time of this machine."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time(0))
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a time; write e.g. 2026-01-15 18:00 or "
                             "2026-01-15T18:00-05:00") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()   # local time
    return moment.astimezone(dt.timezone.utc)


def _utc_text(moment: dt.datetime) -> str:
    """The storage form of a time (as storage._now() writes it)."""
    return moment.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat()
