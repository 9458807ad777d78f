"""The conversation engine: one incoming message in, replies out. No Telegram in here.

Telegram, the terminal chat and `main.py ask` are thin adapters around `Engine.handle()` (or
`Engine.ask()`), in the spirit of Zulip's bots: a plain class, all I/O injected (the database, the
knowledge base), so tests read like transcripts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from . import contacts
from .channels import traits
from .i18n import N_, _, use_language
from .knowledge import CATEGORIES, Entry, KnowledgeBase
from .languages import DEFAULT_LANGUAGE, LANGUAGES, NATIVE_NAMES, from_telegram_code, language_named
from .lexicon import GREETINGS, THANKS
from .masking import mask_personal_data
from .matcher import Matcher
from .messages import (Button, ButtonHandler, CommandHandler, Incoming, MessageHook, Reply, Request,
                       Response, TextHook, button)
from .roles import Roles
from .storage import Database
from .telegram_html import escape
from .text import is_blank, normalize

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 1000   # unanswered questions are kept for staff up to this length

CATEGORY_LABELS = {
    "rights": N_("Know your rights"),
    "help": N_("Get help now"),
    "campaign": N_("The campaign"),
    "action": N_("Take action"),
    "about": N_("Privacy, alerts and more"),   # not "About this bot": an entry has that title
}
DISCLAIMER_CATEGORIES = {"rights", "help"}

# Commands shown in Telegram's menu, in this order, with their descriptions.
COMMANDS = [
    ("menu", N_("Browse topics")),
    ("emergency", N_("Who to call right now")),
    ("language", N_("Change language")),
    ("subscribe", N_("Get urgent alerts and campaign news")),
    ("unsubscribe", N_("Stop alerts and news")),
    ("help", N_("What this bot can do")),
    ("privacy", N_("What the bot keeps about you")),
    ("forget", N_("Delete everything the bot keeps about you")),
    ("start", N_("Start again")),
]


__all__ = ["Button", "Engine", "Incoming", "Knowledge", "Reply", "Request", "Response", "button"]


@dataclass(frozen=True)
class Command:
    handler: CommandHandler
    permission: str | None = None   # see roles.py; without it, the reply to an unknown command


@dataclass
class Knowledge:
    """A knowledge base and its index, swapped together on reload."""

    kb: KnowledgeBase
    matcher: Matcher

    @classmethod
    def build(cls, kb: KnowledgeBase) -> "Knowledge":
        """Train the matcher on `kb` (or take it from the model cache); raises if training fails."""
        return cls(kb, Matcher(kb))


class Engine:
    """Features add their commands, buttons and text hooks with `add_command`, `add_button`,
    `add_text_hook` and `add_message_hook` (like handlers on python-telegram-bot's Application);
    `features=None` wires every feature in bot/features/ (`register_all`), `features=()` none."""

    def __init__(self, knowledge: Knowledge, db: Database, admin_ids: frozenset[int] = frozenset(),
                 knowledge_dir: Path | None = None, features: Iterable | None = None):
        self.knowledge = knowledge
        self.db = db
        self.roles = Roles(db, admin_ids)
        self.knowledge_dir = knowledge_dir
        self.settings = None   # the running bot's Settings, for features that need them (runner.py)
        self._commands: dict[str, Command] = {}
        self._buttons: dict[str, ButtonHandler] = {}
        self._text_hooks: list[TextHook] = []
        self._message_hooks: list[MessageHook] = []
        self._register_core()
        if features is None:
            from .features import register_all
            register_all(self)
        else:
            for feature in features:
                feature.register(self)

    # -- the registry -------------------------------------------------------------------------

    def add_command(self, name: str, handler: CommandHandler, permission: str | None = None) -> None:
        """`/name` calls `handler(request)`. With a `permission` (roles.py), anyone without it
        gets exactly the reply to an unknown command."""
        if name in self._commands:
            raise ValueError(f"the command /{name} is registered twice")
        self._commands[name] = Command(handler, permission)

    def add_button(self, prefix: str, handler: ButtonHandler) -> None:
        """Buttons whose data is "prefix" or "prefix:arg" call `handler(request, arg)`."""
        if prefix in self._buttons or ":" in prefix or "@" in prefix:
            raise ValueError(f"the button prefix {prefix!r} is registered twice or has ':' or '@'")
        self._buttons[prefix] = handler

    def add_text_hook(self, hook: TextHook) -> None:
        """`hook(engine, incoming, user, text)` sees every text that is not a command, before it is
        matched as a question, in the order added; the first Response it returns is the answer."""
        self._text_hooks.append(hook)

    def add_message_hook(self, hook: MessageHook) -> None:
        """`hook(engine, incoming)` is called before any text or command is handled; a function
        it returns is applied to the response."""
        self._message_hooks.append(hook)

    @property
    def commands(self) -> list[str]:
        return sorted(self._commands)

    # -- entry points -------------------------------------------------------------------------

    def handle(self, incoming: Incoming) -> Response:
        """Turn one incoming message or button press into replies."""
        user = self.db.touch_user(incoming.user_id)
        if incoming.button is not None:
            action, _sep, shown_in = incoming.button.rpartition("@")
            if not _sep:
                action, shown_in = incoming.button, ""
            lang = (user.language or (shown_in if shown_in in LANGUAGES else None)
                    or from_telegram_code(incoming.language_hint) or DEFAULT_LANGUAGE)
            with use_language(lang):
                return self._on_button(incoming, action, lang)
        after = [f for hook in self._message_hooks if (f := hook(self, incoming)) is not None]
        response = self._on_message(incoming, user)
        for finish in after:
            response = finish(response)
        return response

    def _on_message(self, incoming: Incoming, user) -> Response:
        text = (incoming.text or "").strip()
        if text.startswith("/"):
            lang = user.language or from_telegram_code(incoming.language_hint) or DEFAULT_LANGUAGE
            with use_language(lang):
                return self._on_command(incoming, text, lang, first_contact=user.language is None)
        for hook in self._text_hooks:   # an organizer's announcement text; "stop", "parar"...
            special = hook(self, incoming, user, text)
            if special is not None:
                return special
        named = language_named(text) if text else None
        if named:
            return self._set_language(incoming.user_id, named)
        detected = self.detect_language(text) if text else None
        lang = user.language or detected or from_telegram_code(incoming.language_hint) or DEFAULT_LANGUAGE
        with use_language(lang):
            response = self._on_text(text, lang, detected, stored=user.language)
        match = response.match
        if match is not None and match.outcome in ("none", "suggest"):
            self.db.record_unanswered(mask_personal_data(text[:MAX_QUESTION_CHARS]), lang, match.outcome)
        return response

    def ask(self, text: str, lang: str | None = None) -> Response:
        """Answer a question without any user (staff preview, benchmarks): no database writes."""
        detected = self.detect_language(text)
        answer_lang = lang or detected or DEFAULT_LANGUAGE
        with use_language(answer_lang):
            return self._on_text(text.strip(), answer_lang, detected, stored=lang)

    def detect_language(self, text: str) -> str | None:
        return self.knowledge.matcher.detector.detect(text[:MAX_QUESTION_CHARS]).language

    # -- text ---------------------------------------------------------------------------------

    def _on_text(self, text: str, lang: str, detected: str | None, stored: str | None) -> Response:
        if is_blank(text):
            return Response([Reply(_("I can only read words. Please write your question, or choose a "
                                     "topic."), [[self._menu_button()]])], lang)
        norm = normalize(text)
        greeted = [lg for lg in LANGUAGES if norm in GREETINGS[lg]]
        if greeted and stored is None and lang not in greeted:   # "oi": a Portuguese hello
            lang = greeted[0]
            with use_language(lang):
                return self._on_text(text, lang, lang, stored)
        if greeted:
            return Response([Reply(_("Hello! Ask me your question in your own words, or choose a "
                                     "topic from the menu."), self._category_buttons())], lang)
        if any(norm in THANKS[lg] for lg in LANGUAGES):
            return Response([Reply(_("You're welcome. Take care, and write any time you need help."),
                                   [[self._menu_button()]])], lang)
        knowledge = self.knowledge
        result = knowledge.matcher.match(text, detected)
        kb = knowledge.kb
        if result.outcome == "answer":
            replies = self._answer(kb.entries[result.entry], lang,
                                   also=[e for e in result.also if e in kb.entries])
        elif result.urgent and "emergency-contacts" in kb.entries:
            replies = self._answer(kb.entries["emergency-contacts"], lang)
            if result.outcome == "suggest":
                replies.append(self._suggestions(result.suggestions, lang))
        elif result.outcome == "suggest":
            replies = [self._suggestions(result.suggestions, lang)]
        else:
            replies = [self._fallback()]
        emergency_first = ("emergency-contacts" in kb.entries and (
            result.entry == "emergency-contacts" or (result.urgent and result.outcome != "answer")))
        if result.urgent and not emergency_first:   # the hotline and 911 before anything else
            replies[0].text = "<b>" + self._emergency_line() + "</b>\n\n" + replies[0].text
        if result.truncated:
            replies[-1].text += "\n\n<i>" + escape(_(
                "Your message was very long: I read only its beginning. If I missed your question, "
                "send it again in a few words.")) + "</i>"
        if stored and detected and detected != stored:
            offer = self._offer_language(detected)
            replies[-1].buttons.append([offer])
        return Response(replies, lang, result)

    def _answer(self, entry: Entry, lang: str, also: list[str] = ()) -> list[Reply]:
        tr = entry.text(lang)
        text = f"<b>{escape(tr.title)}</b>\n\n{tr.answer}"
        if entry.category in DISCLAIMER_CATEGORIES:
            text += "\n\n<i>" + escape(_("This is general information, not legal advice. For your "
                                         "own case, talk to a lawyer or a trusted organization.")) + "</i>"
        kb = self.knowledge.kb
        text += "\n\n" + escape(_("Did this help?"))
        buttons = [[button("👍 " + _("Yes"), f"h:{entry.id}:y"), button("👎 " + _("No"), f"h:{entry.id}:n")]]
        buttons += [[button("➕ " + kb.entries[a].text(lang).title, f"a:{a}")] for a in also]
        buttons += [[button(kb.entries[r].text(lang).title, f"a:{r}")] for r in entry.related
                    if r in kb.entries and r not in also]
        buttons.append([self._menu_button()])
        return [Reply(text, buttons)]

    def _suggestions(self, ids: list[str], lang: str) -> Reply:
        kb = self.knowledge.kb
        buttons = [[button(kb.entries[i].text(lang).title, f"a:{i}")] for i in ids]
        buttons.append([self._menu_button()])
        return Reply(escape(_("I am not sure I understood. Did you mean one of these?")), buttons)

    def _fallback(self) -> Reply:
        text = escape(_("Sorry, I don't have an answer to that. Try other words, or choose a topic "
                        "from the menu.")) + "\n\n" + self._emergency_line()
        return Reply(text, [[self._menu_button()],
                            [button(_("Who to call right now"), "a:emergency-contacts")]]
                     if "emergency-contacts" in self.knowledge.kb.entries else [[self._menu_button()]])

    def _emergency_line(self) -> str:
        return "🚨 " + escape(_("If immigration agents are at your door or someone was just detained, "
                               "call the LUCE rapid response hotline: {hotline}. In an emergency, call "
                               "{emergency}.", hotline=contacts.LUCE_HOTLINE,
                               emergency=contacts.EMERGENCY))

    # -- commands -----------------------------------------------------------------------------

    def _register_core(self) -> None:
        """The engine's own commands and buttons, registered like any feature's."""
        for name, handler in (("start", self._start), ("menu", lambda r: Response([self._menu()], r.lang)),
                              ("help", lambda r: Response([self._help()], r.lang)),
                              ("language", lambda r: Response([self._language_picker()], r.lang)),
                              ("emergency", lambda r: self._entry_command("emergency-contacts", r)),
                              ("privacy", lambda r: self._entry_command("privacy", r)),
                              ("forget", self._forget_question)):
            self.add_command(name, handler)
        for prefix, pressed in (("a", self._answer_button), ("c", self._category_button),
                                ("m", self._menu_pressed), ("l", self._language_button),
                                ("lp", self._picker_button), ("h", self._feedback_button),
                                ("f", self._forget_button)):
            self.add_button(prefix, pressed)

    def _on_command(self, incoming: Incoming, text: str, lang: str, first_contact: bool) -> Response:
        command = text[1:].split()[0].split("@")[0].lower() if len(text) > 1 else ""
        found = self._commands.get(command)
        if found is None or (found.permission is not None
                             and not self.roles.may(incoming.user_id, found.permission)):
            return Response([self.unknown_command()], lang)
        return found.handler(Request(self, incoming, lang, command=command, text=text,
                                     first_contact=first_contact))

    def _start(self, request: Request) -> Response:
        incoming, lang = request.incoming, request.lang
        welcome = escape(_("Hello! I answer questions about your rights as an immigrant in "
                           "Massachusetts and where to get help, in English, Português, Español "
                           "and Kreyòl. Write your question in your own words, for example: "
                           "\"What do I do if ICE comes to my door?\"")) + "\n\n" + escape(_(
            "I give information, not legal advice.")) + "\n\n" + (escape(_(
            traits(incoming.channel).privacy_warning)) if traits(incoming.channel).privacy_warning
            else escape(_("⚠️ Do not send your full name, A-number, address or how you entered the U.S. "
            "This chat is not end-to-end encrypted: Telegram stores it on its servers, and "
            "the people who run this bot receive your messages. I keep no log of our "
            "conversation. Only questions I cannot answer, or am not sure about, are saved, for 30 "
            "days, with names, addresses, dates, phone numbers, A-numbers and emails hidden where I "
            "recognise them and no link to you, so staff can improve the answers. "
            "More: /privacy"))) + "\n\n" + self._emergency_line()
        if request.first_contact:
            return Response([Reply(welcome), self._language_picker()], lang)
        return Response([Reply(welcome, self._category_buttons())], lang)

    def _entry_command(self, entry_id: str, request: Request) -> Response:
        """/emergency, /privacy: that entry's answer (an unknown command if it is missing)."""
        entry = self.knowledge.kb.entries.get(entry_id)
        if entry is None:
            return Response([self.unknown_command()], request.lang)
        return Response(self._answer(entry, request.lang), request.lang)

    def _forget_question(self, request: Request) -> Response:
        return Response([Reply(escape(_(
            "This deletes everything the bot keeps about you: your language, your subscriptions "
            "and anything else linked to your account. Are you sure?")),
            [[button(_("Yes, delete everything"), "f:yes")], [button(_("Cancel"), "f:no")]])], request.lang)

    def unknown_command(self) -> Reply:
        """The reply to a command the bot does not know (also to privileged ones, for others)."""
        return Reply(escape(_("I don't know that command.")) + "\n\n" + self._help().text,
                     [[self._menu_button()]])

    def _help(self) -> Reply:
        lines = [escape(_("I answer questions about immigrants' rights in Massachusetts, in English, "
                          "Português, Español and Kreyòl. Write your question in your own words, or "
                          "use these commands:"))]
        lines += [f"/{name} — {escape(_(desc))}" for name, desc in COMMANDS]
        return Reply("\n".join(lines), [[self._menu_button()]])

    # -- buttons ------------------------------------------------------------------------------

    def _on_button(self, incoming: Incoming, action: str, lang: str) -> Response:
        kind, _sep, arg = action.partition(":")
        handler = self._buttons.get(kind)
        if handler is not None:
            response = handler(Request(self, incoming, lang), arg)
            if response is not None:
                return response
        log.info("stale or unknown button pressed")
        return Response([Reply(escape(_("That button is no longer valid. Here is the menu.")),
                               self._category_buttons())], lang)

    # The core's buttons: None means "stale", answered as an unknown button.

    def _answer_button(self, request: Request, arg: str) -> Response | None:
        entry = self.knowledge.kb.entries.get(arg)
        return Response(self._answer(entry, request.lang), request.lang) if entry else None

    def _category_button(self, request: Request, arg: str) -> Response | None:
        return Response([self._category(arg, request.lang)], request.lang) if arg in CATEGORIES else None

    def _menu_pressed(self, request: Request, arg: str) -> Response | None:
        if arg:
            return None
        reply = self._menu()
        reply.replace = True
        return Response([reply], request.lang)

    def _language_button(self, request: Request, arg: str) -> Response | None:
        return self._set_language(request.user_id, arg) if arg in LANGUAGES else None

    def _picker_button(self, request: Request, arg: str) -> Response | None:
        return None if arg else Response([self._language_picker()], request.lang)

    def _feedback_button(self, request: Request, arg: str) -> Response | None:
        lang = request.lang
        if arg[-2:] not in (":y", ":n") or arg[:-2] not in self.knowledge.kb.entries:
            return None
        helpful = arg.endswith(":y")
        self.db.record_feedback(arg[:-2], lang, helpful, chat_id=request.user_id)
        if helpful:
            return Response([Reply(escape(_("Thank you! This helps us improve the answers.")))], lang)
        return Response([Reply(escape(_("Thank you for telling us: staff will review this answer. "
                                        "You can also ask in other words, or choose a topic.")),
                               [[self._menu_button()]])], lang)

    def _forget_button(self, request: Request, arg: str) -> Response | None:
        if arg == "yes":
            return self._forget(request.user_id, request.lang)
        if arg == "no":
            return Response([Reply(escape(_("Nothing was deleted.")), [[self._menu_button()]],
                                   replace=True)], request.lang)
        return None

    def _forget(self, user_id: int, lang: str) -> Response:
        """Delete everything about the person; the adapter also deletes the recent messages."""
        done = traits(self.db.channel_of(user_id)).forgotten
        recent = self.db.forget_user(user_id)
        log.info("a person asked to be forgotten; their data was deleted")
        text = escape(_(done)) if done else escape(_("Done. Everything the bot kept about you is deleted. I also deleted our "
                        "messages from the last 48 hours in this chat where Telegram allows it; older "
                        "messages can't be deleted by the bot: to remove them, delete this chat in "
                        "Telegram."))
        return Response([Reply(text)], lang, delete_messages=recent, forgotten=True)

    def group_notice(self, lang: str, bot_username: str) -> Reply:
        """What the bot says before leaving a group: it answers one-to-one only, so no group sees
        anyone's questions."""
        with use_language(lang):
            return Reply(escape(_("I only answer one-to-one, not in groups, so that others in a "
                                  "group don't see what people ask. Write to me directly: "
                                  "@{username}", username=bot_username)))

    def _set_language(self, user_id: int, lang: str) -> Response:
        self.db.set_language(user_id, lang)
        with use_language(lang):
            return Response([Reply(escape(_("Done: I will answer in English. Ask your question, or "
                                            "choose a topic.")), self._category_buttons())], lang)

    # -- menus --------------------------------------------------------------------------------

    def _menu(self) -> Reply:
        return Reply(escape(_("Choose a topic:")), self._category_buttons())

    def category_buttons(self) -> list[list[Button]]:
        """A button per category of the menu."""
        return self._category_buttons()

    def _category_buttons(self) -> list[list[Button]]:
        kb = self.knowledge.kb
        return [[button(_(CATEGORY_LABELS[c]), f"c:{c}")] for c in CATEGORIES if kb.in_category(c)]

    def _category(self, category: str, lang: str) -> Reply:
        entries = sorted(self.knowledge.kb.in_category(category), key=lambda e: e.text(lang).title)
        buttons = [[button(e.text(lang).title, f"a:{e.id}")] for e in entries]
        buttons.append([button("« " + _("Back"), "m")])
        return Reply(f"<b>{escape(_(CATEGORY_LABELS[category]))}</b>", buttons, replace=True)

    def _menu_button(self) -> Button:
        return button("☰ " + _("Menu"), "m")

    def _language_picker(self) -> Reply:
        buttons = [[button(NATIVE_NAMES[lg], f"l:{lg}")] for lg in LANGUAGES]
        return Reply(" · ".join(escape(_choose_in(lg)) for lg in LANGUAGES), buttons)

    def _offer_language(self, lang: str) -> Button:
        with use_language(lang):
            return button(_("Answer in English"), f"l:{lang}")


def _choose_in(lang: str) -> str:
    with use_language(lang):
        return _("Choose your language:")
