"""Staff commands: /reload and /report (editors), /grant and /revoke (admins), and the teach
buttons under /report ("t:"). Anyone without the permission gets the engine's reply to an unknown
command (the engine checks the permission each command was registered with)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from ..i18n import _, current_language
from ..messages import Reply, Request, Response, button
from ..roles import staff_person
from ..storage import ROLES
from ..telegram_html import escape

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger(__name__)


def register(engine: "Engine") -> None:
    engine.add_command("reload", lambda request: _respond(request, _reload(request.engine)), permission="reload")
    engine.add_command("report", lambda request: _respond(request, short_report(request.engine)),
                       permission="report")
    engine.add_command("grant", lambda request: _respond(request, _grant(request)), permission="grant")
    engine.add_command("revoke", lambda request: _respond(request, _grant(request)), permission="revoke")
    engine.add_button("t", lambda request, arg: _respond(request, _teach(request.engine, request.user_id, arg)))


def _respond(request: Request, reply: Reply) -> Response:
    return Response([reply], request.lang)


def _reload(engine: "Engine") -> Reply:
    from ..reloader import reload_knowledge

    if engine.knowledge_dir is None:
        return Reply(escape(_("Reloading is not available here.")))
    result = reload_knowledge(engine, engine.knowledge_dir)
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


def _grant(request: Request) -> Reply:
    """/grant ID ROLE and /revoke ID ROLE (the caller's permission was checked). ID is a Telegram
    user id, or whatsapp:NUMBER / sms:NUMBER; the reply says it as it was typed."""
    engine, command, args = request.engine, request.command, request.args
    typed = " ".join(args[:-1])     # a phone number may be typed with spaces: +55 11 98765-4321
    key = staff_person(engine.db, typed) if len(args) == 2 or (len(args) > 2 and ":" in args[0]) else None
    if key is None or args[-1] not in ROLES:
        return Reply(escape(_("Write it like this: /{command} 123456789 editor (roles: editor, "
                              "organizer, admin). The number is the person's Telegram user id.",
                              command=command)))
    person, role = typed, args[-1]
    changed = engine.db.grant(key, role) if command == "grant" else engine.db.revoke(key, role)
    log.info("a role was %s", "granted" if command == "grant" else "revoked")
    if command == "grant":
        return Reply(escape(_("Done: {person} is now {role}.", person=person, role=role) if changed
                            else _("{person} already was {role}.", person=person, role=role)))
    return Reply(escape(_("Done: {person} is no longer {role}.", person=person, role=role) if changed
                        else _("{person} was not {role}.", person=person, role=role)))


def short_report(engine: "Engine") -> Reply:
    """/report: the last week's unanswered questions (with teach buttons) and unhelpful answers."""
    from ..reports import group_unanswered

    db = engine.db
    rows = db.unanswered_since(dt.date.today() - dt.timedelta(days=7))
    lines = ["<b>" + escape(_("Questions without an answer, last 7 days: {n}", n=len(rows))) + "</b>"]
    groups = group_unanswered(rows)[:5]
    lines += [f"{k}. {g.count}× [{','.join(sorted(g.langs))}] {escape(g.example[:120])}"
              for k, g in enumerate(groups, 1)]
    teach = [button("✏️ " + _("Teach the bot #{k}", k=k), f"t:{qid}")
             for k, g in enumerate(groups, 1) if (qid := db.unanswered_id(g.example))]
    votes = [v for v in db.feedback_counts() if v[3] > 0][:5]
    lines.append("\n<b>" + escape(_("Answers marked as not helpful:")) + "</b>")
    lines += [f"{escape(entry)} [{lang}]: {no} 👎 / {yes} 👍" for entry, lang, yes, no in votes] or ["—"]
    lines.append("\n" + escape(_("Full report: python main.py report")))
    return Reply("\n".join(lines), [teach[i:i + 3] for i in range(0, len(teach), 3)])


def _teach(engine: "Engine", user_id: int, arg: str) -> Reply:
    """/report's teach buttons: t:<question id> picks an entry, t:<question id>:<entry> adds it."""
    from ..reloader import reload_knowledge
    from ..teach import teach

    if not engine.roles.may(user_id, "reload") or engine.knowledge_dir is None:
        return engine.unknown_command()
    qid, _sep, entry_id = arg.partition(":")
    question = engine.db.unanswered_question(int(qid)) if qid.isdigit() else None
    if question is None:
        return Reply(escape(_("That question is no longer kept. Send /report again.")))
    qlang, text = question
    kb = engine.knowledge.kb
    if not entry_id:
        result = engine.knowledge.matcher.match(text, qlang)
        ids = [e for e, _score in result.ranking[:5] if e in kb.entries]
        buttons = [[button(kb.entries[e].text(current_language.get()).title, f"t:{qid}:{e}")] for e in ids]
        return Reply(escape(_("Which answer should this question get? If none of these, use: "
                              "python main.py kb teach ENTRY \"question\"")) + f"\n\n<i>{escape(text)}</i>",
                     buttons, replace=False)
    if entry_id not in kb.entries:
        return Reply(escape(_("That button is no longer valid. Here is the menu.")), engine.category_buttons())
    taught = teach(engine.knowledge_dir, entry_id, text, qlang, kb=kb)
    if not taught.ok:
        return Reply(escape(_("Not added: {reason}", reason=taught.message)))
    engine.db.drop_unanswered(text)
    reloaded = reload_knowledge(engine, engine.knowledge_dir)
    log.info("staff taught the bot a question (%s)", "reloaded" if reloaded.ok else "reload refused")
    now = engine.knowledge.matcher.match(text, qlang)
    outcome = (_("it now answers it with this entry") if now.outcome == "answer" and now.entry == entry_id
               else _("it still is not sure: add more ways of asking in the entry's examples"))
    return Reply(escape(_("Added to {entry} [{lang}]. The bot retrained: {outcome}.",
                          entry=entry_id, lang=qlang, outcome=outcome)))
