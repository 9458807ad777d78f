"""Composing an announcement in Telegram: /broadcast, for organizers and admins.

A short conversation kept in the database (a draft, so it survives a restart): pick the topic,
send the text for each language or skip it, see each language's message exactly as recipients will
see it with the number of recipients per language, then send or cancel. Buttons carry the prefix
"b:". Anyone without the role gets exactly the engine's reply to an unknown command. Confirming
records the broadcast; the bot's broadcast service (delivery.py) sends it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ...i18n import _, use_language
from ...languages import DEFAULT_LANGUAGE, LANGUAGES, NATIVE_NAMES, from_telegram_code
from ...messages import Incoming, Reply, Response, button
from ...storage import User
from ...telegram_html import escape
from .content import MAX_TEXT, TOPICS, default_language_for, render, topic_label

if TYPE_CHECKING:
    from ...engine import Engine

log = logging.getLogger(__name__)


def on_command(engine: Engine, user_id: int, command: str, lang: str) -> Response:
    """/broadcast (start composing) and /cancel (stop composing). For anyone without the
    organizer or admin role, exactly the reply to an unknown command."""
    if not engine.roles.may(user_id, "broadcast"):
        return Response([engine.unknown_command()], lang)
    if command == "cancel":
        return _cancel(engine, user_id, lang, replace=False)
    engine.db.take_draft(user_id)   # /broadcast always starts again
    lines = ["📣 <b>" + escape(_("New announcement")) + "</b>", escape(_("Who should get it? Subscribers now:"))]
    lines += [f"{escape(topic_label(t))}: {sum(engine.db.audience(t).values())}" for t in TOPICS]
    buttons = [[button(topic_label(t), f"b:t:{t}")] for t in TOPICS]
    buttons.append([button(_("Cancel"), "b:x")])
    return Response([Reply("\n".join(lines), buttons)], lang)


def on_button(engine: Engine, user_id: int, arg: str, lang: str) -> Response:
    """b:t:<topic>, b:skip:<language>, b:send, b:edit, b:x (cancel)."""
    if not engine.roles.may(user_id, "broadcast"):
        return Response([engine.unknown_command()], lang)
    action, _sep, value = arg.partition(":")
    db = engine.db
    if action == "t" and value in TOPICS:
        db.save_draft(user_id, value, {}, LANGUAGES[0])
        return Response([_ask_text(value, LANGUAGES[0], replace=True)], lang)
    if action == "x":
        return _cancel(engine, user_id, lang, replace=True)
    draft = db.draft(user_id)
    if draft is None:
        return Response([Reply(escape(_("There is no announcement in progress. To start one, send "
                                        "/broadcast.")), replace=True)], lang)
    if action == "skip" and value == draft.awaiting:
        return _next_step(engine, user_id, draft.topic, draft.texts, draft.awaiting, lang)
    if action == "edit" and draft.awaiting is None:
        db.save_draft(user_id, draft.topic, {}, LANGUAGES[0])
        return Response([_ask_text(draft.topic, LANGUAGES[0], replace=True)], lang)
    if action == "send" and draft.awaiting is None:
        return _send(engine, user_id, lang)
    # an old button from an earlier step: show where the draft is
    if draft.awaiting is None:
        return Response(_preview(engine, draft.topic, draft.texts), lang)
    return Response([_ask_text(draft.topic, draft.awaiting)], lang)


def on_text(engine: Engine, incoming: Incoming, user: User, text: str) -> Response | None:
    """The text of one language, while an organizer is composing and the bot waits for it."""
    draft = engine.db.draft(incoming.user_id)
    if draft is None or draft.awaiting is None:
        return None
    if not engine.roles.may(incoming.user_id, "broadcast"):   # the role was taken away meanwhile
        engine.db.take_draft(incoming.user_id)
        return None
    lang = user.language or from_telegram_code(incoming.language_hint) or DEFAULT_LANGUAGE
    with use_language(lang):
        if not text.strip():
            note = escape(_("Please send the text as a message with words, or skip this language."))
            return Response([_ask_text(draft.topic, draft.awaiting, note=note)], lang)
        if len(text) > MAX_TEXT:
            note = escape(_("This text is too long: {n} characters; the limit is {limit}. Please "
                            "shorten it and send it again.", n=len(text), limit=MAX_TEXT))
            return Response([_ask_text(draft.topic, draft.awaiting, note=note)], lang)
        texts = {**draft.texts, draft.awaiting: escape(text.strip())}
        note = "✅ " + escape(_("Saved the {language} text.", language=NATIVE_NAMES[draft.awaiting]))
        return _next_step(engine, incoming.user_id, draft.topic, texts, draft.awaiting, lang, note)


def _next_step(engine: Engine, user_id: int, topic: str, texts: dict[str, str], done: str, lang: str,
               note: str | None = None) -> Response:
    """After the text of `done` was given or skipped: ask for the next language, or preview."""
    following = LANGUAGES[LANGUAGES.index(done) + 1:]
    if following:
        engine.db.save_draft(user_id, topic, texts, following[0])
        return Response([_ask_text(topic, following[0], note=note)], lang)
    if not texts:
        engine.db.save_draft(user_id, topic, texts, LANGUAGES[0])
        note = escape(_("An announcement needs a text in at least one language."))
        return Response([_ask_text(topic, LANGUAGES[0], note=note)], lang)
    engine.db.save_draft(user_id, topic, texts, None)
    replies = _preview(engine, topic, texts)
    if note:
        replies[0].text = note + "\n\n" + replies[0].text
    return Response(replies, lang)


def _ask_text(topic: str, language: str, note: str | None = None, replace: bool = False) -> Reply:
    step = f"{escape(topic_label(topic))} · {LANGUAGES.index(language) + 1}/{len(LANGUAGES)}"
    ask = escape(_("Send the text in {language}, written as people should read it, or skip this "
                   "language.", language=NATIVE_NAMES[language]))
    text = "\n\n".join(part for part in (note, f"<b>{step}</b>", ask) if part)
    return Reply(text, [[button(_("Skip {language}", language=NATIVE_NAMES[language]), f"b:skip:{language}")],
                        [button(_("Cancel"), "b:x")]], replace=replace)


def _preview(engine: Engine, topic: str, texts: dict[str, str]) -> list[Reply]:
    """One message per language exactly as recipients will get it, then who gets what."""
    default = default_language_for(texts)
    counts = engine.db.audience(topic)
    total = sum(counts.get(lg, 0) for lg in LANGUAGES)
    replies = [Reply(escape(_("Preview: the next messages are exactly what people will get, one per "
                              "language.")))]
    replies += [Reply(render(topic, texts, default, lg)) for lg in LANGUAGES]
    lines = [f"<b>{escape(topic_label(topic))}</b>: " + escape(_("people who will get it: {n}",
                                                                 n=total))]
    by_channel = engine.db.audience_by_channel(topic)
    channels = [c for c in ("telegram", "whatsapp", "sms") if any(ch == c and n for (ch, _lg), n in by_channel.items())]
    for lg in LANGUAGES:
        line = f"• {NATIVE_NAMES[lg]}: {counts.get(lg, 0)}"
        if len(channels) > 1 or "telegram" not in channels and channels:
            line += " (" + ", ".join(f"{CHANNEL_NAMES[c]} {by_channel.get((c, lg), 0)}" for c in channels) + ")"
        if lg not in texts:
            line += " — " + escape(_("gets the {language} text", language=NATIVE_NAMES[default]))
        lines.append(line)
    if "whatsapp" in channels:
        lines.append(whatsapp_note(engine))
    if total:
        lines.append("\n" + escape(_("Send it now?")))
        buttons = [[button("✅ " + _("Send to everyone ({n})", n=total), "b:send")],
                   [button("✏️ " + _("Write the texts again"), "b:edit")], [button(_("Cancel"), "b:x")]]
    else:
        lines.append("\n" + escape(_("Nobody is subscribed to this topic yet, so there is nobody to "
                                     "send it to.")))
        buttons = [[button(_("Cancel"), "b:x")]]
    replies.append(Reply("\n".join(lines), buttons))
    return replies


CHANNEL_NAMES = {"telegram": "Telegram", "whatsapp": "WhatsApp", "sms": "SMS"}


def whatsapp_note(engine: Engine) -> str:
    """What people on WhatsApp outside the 24-hour window get: the template, per language."""
    settings = getattr(engine, "settings", None)
    templates = settings.whatsapp_template_map() if settings is not None else {}
    lines = [escape(_("WhatsApp: people who have not written in the last 24 hours get the approved "
                      "template with this text in it."))]
    if DEFAULT_LANGUAGE not in templates:
        lines.append("⚠️ " + escape(_("No WhatsApp template is set for English (WHATSAPP_TEMPLATES): "
                                     "people who have not written in 24 hours and have no template "
                                     "in their language can't get it on WhatsApp.")))
    missing = [NATIVE_NAMES[lg] for lg in LANGUAGES if lg not in templates]
    if missing and DEFAULT_LANGUAGE in templates:
        lines.append(escape(_("No WhatsApp template for {languages}: they get the English template.",
                              languages=", ".join(missing))))
    return "\n".join(lines)


def _send(engine: Engine, user_id: int, lang: str) -> Response:
    """Confirmed: record the broadcast; the bot's broadcast service starts it within a second."""
    draft = engine.db.take_draft(user_id)   # atomic: a double press records one broadcast
    if draft is None or draft.awaiting is not None or not draft.texts:
        return Response([Reply(escape(_("There is no announcement in progress. To start one, send "
                                        "/broadcast.")), replace=True)], lang)
    total = sum(engine.db.audience(draft.topic).values())
    broadcast_id = engine.db.create_broadcast(
        topic=draft.topic, texts=draft.texts, default_language=default_language_for(draft.texts),
        composed_by=f"{engine.db.channel_of(user_id)}:{user_id}", report_chat=user_id, report_language=lang)
    log.info("broadcast #%d composed in the chat", broadcast_id)
    return Response([Reply(escape(_("Announcement #{id} is on its way. Recipients: {n}. The "
                                    "progress will show here.", id=broadcast_id, n=total)), replace=True)], lang)


def _cancel(engine: Engine, user_id: int, lang: str, replace: bool) -> Response:
    if engine.db.take_draft(user_id) is None:
        return Response([Reply(escape(_("There is no announcement in progress. To start one, send "
                                        "/broadcast.")), replace=replace)], lang)
    return Response([Reply(escape(_("Cancelled: nothing was sent.")), replace=replace)], lang)
