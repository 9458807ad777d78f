"""Subscriptions to announcements: /subscribe, /unsubscribe, stop words, and coming back.

A subscription is a chat id, the topics chosen, a language and an active flag, with dates (see
`storage.Subscription`); nothing else. The engine delegates here: commands `/subscribe` and
`/unsubscribe`, buttons whose data starts with "s:", whole messages that are a stop word, and the
first message of someone whose announcements stopped because Telegram said the bot could not
reach them (they had blocked it): they are answered as usual and asked whether to resume.

The language announcements come in is the one the person chose with /language if they did,
otherwise the one they were answered in when they last changed their subscription.
"""

from __future__ import annotations

import logging

from typing import TYPE_CHECKING

from ..i18n import _, use_language
from ..languages import LANGUAGES, NATIVE_NAMES, from_telegram_code
from ..messages import Button, Incoming, Reply, Request, Response, button
from ..storage import Subscription, User
from ..telegram_html import escape
from ..text import normalize
from .broadcasts.content import TOPICS, TOPIC_LABELS, topic_label

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger(__name__)

# Whole messages (normalised) that mean "stop all announcements", with the languages they are
# in, most likely first: the confirmation is in the person's language if it is one of these.
# Keep in sync with knowledge/about/subscribe.yaml, which tells people about them.
_ALL = LANGUAGES
STOP_WORDS: dict[str, tuple[str, ...]] = {
    # English, and understood everywhere
    "stop": _ALL, "stop all": _ALL, "stopall": _ALL, "unsubscribe": _ALL, "stop messages": ("en",),
    "stop alerts": ("en",), "stop sending": ("en",), "opt out": ("en",),
    # Português
    "parar": ("pt", "es"), "pare": ("es", "pt"), "para": ("pt", "es"), "sair": ("pt",),
    "cancelar": ("pt", "es"), "descadastrar": ("pt",), "cancelar inscricao": ("pt",),
    "nao quero mais": ("pt",), "parar alertas": ("pt",), "parar mensagens": ("pt",),
    # Español
    "alto": ("es",), "basta": ("es", "pt"), "baja": ("es",), "darme de baja": ("es",),
    "cancelar suscripcion": ("es",), "no mas": ("es",), "ya no": ("es",), "detener": ("es",),
    # Kreyòl ayisyen
    "kanpe": ("ht",), "rete": ("ht",), "sispann": ("ht",), "dezabone": ("ht",),
    "pa voye anko": ("ht",), "m pa vle anko": ("ht",), "mwen pa vle anko": ("ht",),
}

# Commands after which the resume question would be out of place (they are about it already).
_NOT_AFTER = {"forget", "subscribe", "unsubscribe"}


# -- what the engine calls ------------------------------------------------------------------------

def on_command(engine: Engine, user_id: int, command: str, lang: str) -> Response:
    """/subscribe and /unsubscribe."""
    if command == "subscribe":
        return Response([_menu(engine, user_id)], lang)
    sub = engine.db.subscription(user_id)
    if sub is None:
        return Response([Reply(escape(_("You don't get any announcements. To get them, send "
                                        "/subscribe.")))], lang)
    buttons = [[button(_("Stop: {topic}", topic=_(TOPIC_LABELS[t])), f"s:off:{t}")]
               for t in TOPICS if t in sub.topics]
    if len(sub.topics) > 1:
        buttons.append([button(_("Stop all"), "s:off:all")])
    buttons.append([button(_("Keep them"), "s:keep")])
    return Response([Reply(_status(engine, sub) + "\n\n" + escape(_("Which announcements do you want to stop?")),
                           buttons)], lang)


def on_button(engine: Engine, user_id: int, arg: str, lang: str) -> Response:
    """Buttons "s:on:<topic>", "s:off:<topic>", "s:off:all", "s:keep", "s:resume", "s:noresume"."""
    db = engine.db
    sub = db.subscription(user_id)
    current = set(sub.topics) if sub else set()
    action, _sep, topic = arg.partition(":")
    if action == "on" and topic in TOPICS:
        db.set_subscription(user_id, current | {topic}, lang)
        log.info("a person subscribed to a topic")
        return Response([_menu(engine, user_id, note="✅ " + escape(_("Saved.")), replace=True)], lang)
    if action == "off" and topic in TOPICS:
        db.set_subscription(user_id, current - {topic}, lang)
        log.info("a person unsubscribed from a topic")
        return Response([_menu(engine, user_id, note="✅ " + escape(_("Saved.")), replace=True)], lang)
    if (action == "off" and topic == "all") or action == "noresume":
        db.set_subscription(user_id, (), lang)
        log.info("a person unsubscribed from everything")
        return Response([_stopped(had=sub is not None, replace=True)], lang)
    if action == "keep":
        return Response([Reply(escape(_("OK, nothing changed.")), replace=True)], lang)
    if action == "resume" and sub is not None:
        db.set_subscription(user_id, current, lang)
        log.info("a person resumed their subscription")
        return Response([_menu(engine, user_id, note="✅ " + escape(_("Welcome back: announcements "
                                                                      "are on again.")), replace=True)], lang)
    return Response([_menu(engine, user_id, replace=True)], lang)


def on_text(engine: Engine, incoming: Incoming, user: User, text: str) -> Response | None:
    """A whole message that is a stop word ("stop", "parar", "kanpe"...): stop everything."""
    languages = STOP_WORDS.get(normalize(text)) if len(text) < 40 else None
    if not languages:
        return None
    hint = from_telegram_code(incoming.language_hint)
    lang = user.language or (hint if hint in languages else languages[0])
    had = engine.db.subscription(incoming.user_id) is not None
    engine.db.set_subscription(incoming.user_id, (), lang)
    if had:
        log.info("a person unsubscribed with a stop word")
    with use_language(lang):
        return Response([_stopped(had)], lang)


def comes_back(engine: Engine, incoming: Incoming) -> bool:
    """True (once) when someone whose announcements stopped because Telegram said the bot could
    not reach them writes again, so the engine can ask whether to resume."""
    text = (incoming.text or "").strip()
    command = text[1:].split()[0].split("@")[0].lower() if text.startswith("/") and len(text) > 1 else ""
    if command in _NOT_AFTER or (not command and normalize(text) in STOP_WORDS):
        return False
    return engine.db.claim_resume_offer(incoming.user_id)


def offer_resume(response: Response) -> Response:
    """Add the question "resume your announcements?" to a response, in its language."""
    with use_language(response.language):
        response.replies.append(Reply(
            escape(_("Welcome back! We stopped sending you announcements because Telegram told us "
                     "the bot could not reach you. Do you want to get them again?")),
            [[button(_("Yes, send them again"), "s:resume")], [button(_("No, thanks"), "s:noresume")]]))
    return response


# -- replies ----------------------------------------------------------------------------------------

def _status(engine: Engine, sub: Subscription | None) -> str:
    if sub is None or not sub.topics:
        return escape(_("You don't get any announcements now."))
    user = engine.db.get_user(sub.chat_id)
    language = NATIVE_NAMES.get((user.language if user else None) or sub.language, sub.language)
    lines = [escape(_("You get these announcements, in {language}:", language=language))]
    lines += [f"• {escape(topic_label(t))}" for t in TOPICS if t in sub.topics]
    if not sub.active:
        lines.insert(0, "⏸ " + escape(_("Paused: Telegram told us the bot could not reach you. Turn a "
                                        "topic on to get announcements again.")))
    else:
        lines.append(escape(_("To stop them all, send /unsubscribe or write STOP.")))
    return "\n".join(lines)


def _menu(engine: Engine, user_id: int, note: str | None = None, replace: bool = False) -> Reply:
    """What the person gets now, and one button per topic to turn it on or off."""
    sub = engine.db.subscription(user_id)
    on = set(sub.topics) if sub and sub.active else set()
    text = "\n\n".join(part for part in (note, _status(engine, sub), escape(_("Tap a topic to turn it on or off.")))
                       if part)
    buttons: list[list[Button]] = [
        [button(("✅ " if t in on else "⬜ ") + topic_label(t), f"s:{'off' if t in on else 'on'}:{t}")]
        for t in TOPICS]
    buttons.append([button("☰ " + _("Menu"), "m")])
    return Reply(text, buttons, replace=replace)


def _stopped(had: bool, replace: bool = False) -> Reply:
    if had:
        return Reply(escape(_("Done: you won't get any more announcements. To get them again, send "
                              "/subscribe.")), replace=replace)
    return Reply(escape(_("You don't get any announcements. To get them, send /subscribe.")),
                 replace=replace)


# -- wiring ---------------------------------------------------------------------------------------

def register(engine: "Engine") -> None:
    """/subscribe, /unsubscribe, the "s:" buttons, stop words, and the resume question."""
    from ..channels import traits

    def command(request: Request) -> Response:
        if not traits(request.incoming.channel).broadcasts:
            return Response([Reply(escape(_("Alerts and campaign news do not come on this app yet. To "
                                            "get them, write /subscribe to the bot on Telegram.")),
                                   [[button("☰ " + _("Menu"), "m")]])], request.lang)
        return on_command(request.engine, request.user_id, request.command, request.lang)

    def pressed(request: Request, arg: str) -> Response:
        return on_button(request.engine, request.user_id, arg, request.lang)

    def back(engine: "Engine", incoming: Incoming):
        return offer_resume if comes_back(engine, incoming) else None

    engine.add_command("subscribe", command)
    engine.add_command("unsubscribe", command)
    engine.add_button("s", pressed)
    engine.add_text_hook(on_text)
    engine.add_message_hook(back)
