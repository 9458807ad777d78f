"""The conversation engine: one incoming message in, replies out. No Telegram in here.

Telegram, the terminal chat and `main.py ask` are thin adapters around `Engine.handle()` (or
`Engine.ask()`), in the spirit of Zulip's bots: a plain class, all I/O injected (the database, the
knowledge base), so tests read like transcripts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from . import contacts
from .channels import traits
from .i18n import N_, _, current_language, use_language
from .knowledge import CATEGORIES, Entry, KnowledgeBase
from .languages import DEFAULT_LANGUAGE, LANGUAGES, NATIVE_NAMES, from_telegram_code, language_named
from .lexicon import GREETINGS, THANKS
from .masking import mask_personal_data
from .matcher import Matcher, MatchResult
from .roles import Roles, person_id
from .storage import ROLES, Database
from .telegram_html import escape
from .text import is_blank, normalize

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 1000   # unanswered questions are kept for staff up to this length

CATEGORY_LABELS = {
    "rights": N_("Know your rights"),
    "help": N_("Get help now"),
    "campaign": N_("The campaign"),
    "action": N_("Take action"),
    "about": N_("About this bot"),
}
DISCLAIMER_CATEGORIES = {"rights", "help"}

# Staff commands and the permission each needs (see roles.py). Not in the public menu.
STAFF_COMMANDS = {"reload": "reload", "report": "report", "grant": "grant", "revoke": "revoke"}

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


@dataclass(frozen=True)
class Button:
    label: str
    data: str  # at most 64 bytes (Telegram's callback_data limit)


def button(label: str, action: str) -> Button:
    """A button whose data also carries the language it was shown in ("a:warrants@pt"), so that
    pressing it answers in that language even for someone who never chose one."""
    return Button(label, f"{action}@{current_language.get()}")


@dataclass
class Reply:
    text: str                                   # the knowledge base's HTML subset; channels render it
    buttons: list[list[Button]] = field(default_factory=list)
    replace: bool = False                       # edit the message whose button was pressed


@dataclass
class Incoming:
    user_id: int
    text: str | None = None
    button: str | None = None
    language_hint: str | None = None            # the client's language code, e.g. "pt-br"
    channel: str = "telegram"                   # which channel it came by (see bot/channels/)


@dataclass
class Response:
    replies: list[Reply]
    language: str
    match: MatchResult | None = None
    delete_messages: list[int] = field(default_factory=list)  # /forget: ids to delete in the chat
    forgotten: bool = False  # the person was just deleted: record nothing more about this chat


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
    def __init__(self, knowledge: Knowledge, db: Database, admin_ids: frozenset[int] = frozenset(),
                 knowledge_dir: Path | None = None):
        self.knowledge = knowledge
        self.db = db
        self.roles = Roles(db, admin_ids)
        self.knowledge_dir = knowledge_dir

    # -- entry points -------------------------------------------------------------------------

    def handle(self, incoming: Incoming) -> Response:
        """Turn one incoming message or button press into replies."""
        user = self.db.touch_user(incoming.user_id)
        if incoming.button is None:
            from . import subscriptions   # someone whose announcements stopped (blocked bot) is back:
            if subscriptions.comes_back(self, incoming):   # answer, then ask whether to resume (once)
                return subscriptions.offer_resume(self.handle(incoming))
        if incoming.button is not None:
            action, _sep, shown_in = incoming.button.rpartition("@")
            if not _sep:
                action, shown_in = incoming.button, ""
            lang = (user.language or (shown_in if shown_in in LANGUAGES else None)
                    or from_telegram_code(incoming.language_hint) or DEFAULT_LANGUAGE)
            with use_language(lang):
                return self._on_button(incoming.user_id, action, lang)
        text = (incoming.text or "").strip()
        if text.startswith("/"):
            lang = user.language or from_telegram_code(incoming.language_hint) or DEFAULT_LANGUAGE
            with use_language(lang):
                return self._on_command(incoming, text, lang, first_contact=user.language is None)
        from . import composer, subscriptions   # an organizer's announcement text; "stop", "parar"...
        special = (composer.on_text(self, incoming, user, text)
                   or subscriptions.on_text(self, incoming, user, text))
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

    def _on_command(self, incoming: Incoming, text: str, lang: str, first_contact: bool) -> Response:
        command = text[1:].split()[0].split("@")[0].lower() if len(text) > 1 else ""
        kb = self.knowledge.kb
        if command == "start":
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
            if first_contact:
                return Response([Reply(welcome), self._language_picker()], lang)
            return Response([Reply(welcome, self._category_buttons())], lang)
        if command == "menu":
            return Response([self._menu()], lang)
        if command == "help":
            return Response([self._help()], lang)
        if command == "language":
            return Response([self._language_picker()], lang)
        if command == "emergency" and "emergency-contacts" in kb.entries:
            return Response(self._answer(kb.entries["emergency-contacts"], lang), lang)
        if command == "privacy" and "privacy" in kb.entries:
            return Response(self._answer(kb.entries["privacy"], lang), lang)
        if command == "forget":
            return Response([Reply(escape(_(
                "This deletes everything the bot keeps about you: your language, your subscriptions "
                "and anything else linked to your account. Are you sure?")),
                [[button(_("Yes, delete everything"), "f:yes")], [button(_("Cancel"), "f:no")]])], lang)
        if command in STAFF_COMMANDS and self.roles.may(incoming.user_id, STAFF_COMMANDS[command]):
            return Response([self._staff_command(command, text)], lang)
        if command in ("subscribe", "unsubscribe") and not traits(incoming.channel).broadcasts:
            return Response([Reply(escape(_("Alerts and campaign news do not come on this app yet. To "
                                            "get them, write /subscribe to the bot on Telegram.")),
                                   [[self._menu_button()]])], lang)
        if command in ("subscribe", "unsubscribe"):
            from . import subscriptions
            return subscriptions.on_command(self, incoming.user_id, command, lang)
        if command in ("broadcast", "cancel"):   # organizers; everyone else: unknown_command()
            from . import composer
            return composer.on_command(self, incoming.user_id, command, lang)
        return Response([self.unknown_command()], lang)

    def _staff_command(self, command: str, text: str) -> Reply:
        """/reload, /report, /grant, /revoke: the caller's role was checked."""
        from .reloader import reload_knowledge

        if command == "reload":
            if self.knowledge_dir is None:
                return Reply(escape(_("Reloading is not available here.")))
            result = reload_knowledge(self, self.knowledge_dir)
            if result.ok:
                changes = ([escape(_("Entries added: {ids}", ids=", ".join(result.added)))] if result.added
                           else []) + ([escape(_("Entries removed (their file is gone or its id changed): "
                                                 "{ids}", ids=", ".join(result.removed)))]
                                       if result.removed else [])
                return Reply(escape(_("Reloaded: the bot now answers from {n} entries.", n=result.entries))
                             + "".join("\n" + line for line in changes)
                             + ("\n" + escape(_("Warnings:")) + "\n" + "\n".join(
                                 f"• <code>{escape(str(i))}</code>" for i in result.issues[:10])
                                if result.issues else ""))
            problems = "\n".join(f"• <code>{escape(str(i))}</code>" for i in result.errors[:15])
            return Reply(escape(_("Not reloaded: the bot keeps answering from the last good version "
                                  "({n} entries). Fix these problems, save, and send /reload again:",
                                  n=result.entries)) + "\n" + problems)
        if command == "report":
            return self._short_report()
        args = text.split()[1:]
        if len(args) != 2 or person_id(args[0]) is None or args[1] not in ROLES:
            return Reply(escape(_("Write it like this: /{command} 123456789 editor (roles: editor, "
                                  "organizer, admin). The number is the person's Telegram user id.",
                                  command=command)))
        person, role = person_id(args[0]), args[1]
        changed = self.db.grant(person, role) if command == "grant" else self.db.revoke(person, role)
        log.info("a role was %s", "granted" if command == "grant" else "revoked")
        if command == "grant":
            return Reply(escape(_("Done: {person} is now {role}.", person=person, role=role) if changed
                                else _("{person} already was {role}.", person=person, role=role)))
        return Reply(escape(_("Done: {person} is no longer {role}.", person=person, role=role) if changed
                            else _("{person} was not {role}.", person=person, role=role)))

    def _short_report(self) -> Reply:
        import datetime as dt

        from .reports import group_unanswered

        rows = self.db.unanswered_since(dt.date.today() - dt.timedelta(days=7))
        lines = ["<b>" + escape(_("Questions without an answer, last 7 days: {n}", n=len(rows))) + "</b>"]
        groups = group_unanswered(rows)[:5]
        lines += [f"{k}. {g.count}× [{','.join(sorted(g.langs))}] {escape(g.example[:120])}"
                  for k, g in enumerate(groups, 1)]
        teach = [button("✏️ " + _("Teach the bot #{k}", k=k), f"t:{qid}")
                 for k, g in enumerate(groups, 1) if (qid := self.db.unanswered_id(g.example))]
        votes = [v for v in self.db.feedback_counts() if v[3] > 0][:5]
        lines.append("\n<b>" + escape(_("Answers marked as not helpful:")) + "</b>")
        lines += [f"{escape(entry)} [{lang}]: {no} 👎 / {yes} 👍" for entry, lang, yes, no in votes] or ["—"]
        lines.append("\n" + escape(_("Full report: python main.py report")))
        return Reply("\n".join(lines), [teach[i:i + 3] for i in range(0, len(teach), 3)])

    def _teach(self, user_id: int, arg: str) -> Reply:
        """/report's teach buttons: t:<question id> picks an entry, t:<question id>:<entry> adds it."""
        from .reloader import reload_knowledge
        from .teach import teach

        if not self.roles.may(user_id, "reload") or self.knowledge_dir is None:
            return self.unknown_command()
        qid, _sep, entry_id = arg.partition(":")
        question = self.db.unanswered_question(int(qid)) if qid.isdigit() else None
        if question is None:
            return Reply(escape(_("That question is no longer kept. Send /report again.")))
        qlang, text = question
        kb = self.knowledge.kb
        if not entry_id:
            result = self.knowledge.matcher.match(text, qlang)
            ids = [e for e, _score in result.ranking[:5] if e in kb.entries]
            buttons = [[button(kb.entries[e].text(current_language.get()).title, f"t:{qid}:{e}")] for e in ids]
            return Reply(escape(_("Which answer should this question get? If none of these, use: "
                                  "python main.py kb teach ENTRY \"question\"")) + f"\n\n<i>{escape(text)}</i>",
                         buttons, replace=False)
        if entry_id not in kb.entries:
            return Reply(escape(_("That button is no longer valid. Here is the menu.")), self._category_buttons())
        taught = teach(self.knowledge_dir, entry_id, text, qlang, kb=kb)
        if not taught.ok:
            return Reply(escape(_("Not added: {reason}", reason=taught.message)))
        self.db.drop_unanswered(text)
        reloaded = reload_knowledge(self, self.knowledge_dir)
        log.info("staff taught the bot a question (%s)", "reloaded" if reloaded.ok else "reload refused")
        now = self.knowledge.matcher.match(text, qlang)
        outcome = (_("it now answers it with this entry") if now.outcome == "answer" and now.entry == entry_id
                   else _("it still is not sure: add more ways of asking in the entry's examples"))
        return Reply(escape(_("Added to {entry} [{lang}]. The bot retrained: {outcome}.",
                              entry=entry_id, lang=qlang, outcome=outcome)))

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

    def _on_button(self, user_id: int, action: str, lang: str) -> Response:
        kind, _sep, arg = action.partition(":")
        kb = self.knowledge.kb
        if kind == "a" and arg in kb.entries:
            return Response(self._answer(kb.entries[arg], lang), lang)
        if kind == "c" and arg in CATEGORIES:
            return Response([self._category(arg, lang)], lang)
        if kind == "m" and not arg:
            reply = self._menu()
            reply.replace = True
            return Response([reply], lang)
        if kind == "l" and arg in LANGUAGES:
            return self._set_language(user_id, arg)
        if kind == "lp" and not arg:
            return Response([self._language_picker()], lang)
        if kind == "h" and arg[-2:] in (":y", ":n") and arg[:-2] in kb.entries:
            helpful = arg.endswith(":y")
            self.db.record_feedback(arg[:-2], lang, helpful, chat_id=user_id)
            if helpful:
                return Response([Reply(escape(_("Thank you! This helps us improve the answers.")))], lang)
            return Response([Reply(escape(_("Thank you for telling us: staff will review this answer. "
                                            "You can also ask in other words, or choose a topic.")),
                                   [[self._menu_button()]])], lang)
        if kind == "f" and arg == "yes":
            return self._forget(user_id, lang)
        if kind == "f" and arg == "no":
            return Response([Reply(escape(_("Nothing was deleted.")), [[self._menu_button()]],
                                   replace=True)], lang)
        if kind == "s":
            from . import subscriptions
            return subscriptions.on_button(self, user_id, arg, lang)
        if kind == "b":
            from . import composer
            return composer.on_button(self, user_id, arg, lang)
        if kind == "t":
            return Response([self._teach(user_id, arg)], lang)
        log.info("stale or unknown button pressed")
        return Response([Reply(escape(_("That button is no longer valid. Here is the menu.")),
                               self._category_buttons())], lang)

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
