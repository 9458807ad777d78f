"""`python main.py ...`: the command line. Each subcommand loads only what it needs."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .config import ConfigError, Settings
from .languages import LANGUAGES


def _load_knowledge_or_exit(directory: Path):
    from .knowledge import load_knowledge

    kb, issues = load_knowledge(directory)
    errors = [i for i in issues if i.level == "error"]
    if errors:
        for issue in issues:
            print(issue, file=sys.stderr)
        print(f"\nThe knowledge base has {len(errors)} error(s); fix them and try again "
              "(python main.py kb check).", file=sys.stderr)
        sys.exit(2)
    return kb, issues


def _knowledge_at_start(settings: Settings, keep: bool = True):
    """The knowledge base to start from: knowledge/ if it passes the check (then also kept as
    the last good version beside the database); else the last good version, with a loud warning;
    else nothing to start from: the errors, and exit."""
    from . import lastgood
    from .knowledge import load_knowledge

    kb, issues = load_knowledge(settings.knowledge_dir)
    errors = [i for i in issues if i.level == "error"]
    if not errors:
        if keep:   # not for `ask`, which saves nothing
            lastgood.save(settings.knowledge_dir, settings.database)
        return kb
    for issue in errors:
        print(issue, file=sys.stderr)
    fallback = lastgood.load(settings.database)
    if fallback is None:
        print(f"\nThe knowledge base has {len(errors)} error(s) and there is no last good version "
              f"to start from ({lastgood.folder_for(settings.database)}); fix them and try again "
              "(python main.py kb check).", file=sys.stderr)
        sys.exit(2)
    kb, _issues, folder, saved = fallback
    warning = (f"WARNING: the knowledge base in {settings.knowledge_dir} has {len(errors)} error(s) "
               f"(above). STARTING FROM THE LAST GOOD VERSION ({len(kb)} entries, saved "
               f"{saved:%Y-%m-%d %H:%M}, in {folder}). Fix the errors and save: the running bot "
               "takes the fixed files live (or send /reload).")
    print("\n" + warning + "\n", file=sys.stderr)
    import logging
    if logging.getLogger().handlers:   # the bot's log too (python main.py run)
        logging.getLogger(__name__).critical("%s", warning)
    return kb


def _engine(settings: Settings, database: str | Path | None = None):
    from .engine import Engine, Knowledge
    from .i18n import load_catalogs
    from .matcher import model_cache_for, set_model_cache
    from .nlu.model import ModelCache
    from .storage import Database

    load_catalogs()
    kb = _knowledge_at_start(settings, keep=database is None)
    cache = (ModelCache(settings.model_cache) if settings.model_cache   # trained models
             else model_cache_for(settings.database))
    cache.announce = lambda sentence: print(sentence, file=sys.stderr, flush=True)
    set_model_cache(cache)
    return Engine(Knowledge.build(kb), Database(database or settings.database), settings.admin_ids,
                  knowledge_dir=settings.knowledge_dir)


def cmd_chat(args, settings: Settings) -> int:
    from .channels.terminal import TERMINAL_USER_ID, TerminalChat

    engine = _engine(settings)
    if args.lang:
        engine.db.set_language(TERMINAL_USER_ID, args.lang)
    TerminalChat(engine, language=args.lang).run(sys.stdin)
    return 0


def _kind_of(text: str) -> str:
    """What chat would take a line for: a command, a language's name, a stop word or a question."""
    from .features.subscriptions import STOP_WORDS
    from .languages import language_named
    from .text import normalize

    text = text.strip()
    if text.startswith("/"):
        return "command"
    if language_named(text):
        return "language"
    if len(text) < 40 and normalize(text) in STOP_WORDS:
        return "stop word"
    return "question"


def cmd_ask(args, settings: Settings) -> int:
    """Each line as chat would answer it for a new person (nothing subscribed, no role; with
    --lang, one who chose that language), in a database in memory that nothing else sees."""
    from .engine import Incoming
    from .telegram_html import to_plain

    engine = _engine(settings, database=":memory:")
    questions = [" ".join(args.question)] if args.question else (line.rstrip("\n") for line in sys.stdin)
    for number, question in enumerate(questions, start=1):
        if not question.strip():
            continue
        person = -number   # never one of BOT_ADMIN_IDS: staff commands answer as for anyone
        if args.lang:
            engine.db.set_language(person, args.lang)
        response = engine.handle(Incoming(person, text=question))
        kind = _kind_of(question)
        match = response.match
        answer = "\n\n".join(to_plain(r.text) for r in response.replies)
        if args.json:
            print(json.dumps({
                "question": question, "lang": response.language,
                "entry": match.entry if match else None,
                "score": match.score if match else 0.0,
                "suggestions": match.suggestions if match else [],
                "answer": answer,
            }, ensure_ascii=False), flush=False)
        else:
            outcome = match.outcome if match else ("none" if kind == "question" else kind)
            what = match.entry or ", ".join(match.suggestions) or "-" if match else "-"
            print(f"Q: {question}\n[{response.language}] {outcome} {what} (score "
                  f"{match.score if match else 0:.2f})\n{answer}\n")
    sys.stdout.flush()
    return 0


def cmd_kb(args, settings: Settings) -> int:
    from .knowledge import kb_to_json, load_knowledge

    directory = Path(args.dir) if args.dir else settings.knowledge_dir
    if args.kb_command == "dump":
        kb, _issues = _load_knowledge_or_exit(directory)
        json.dump(kb_to_json(kb), sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    if args.kb_command == "status":
        return _kb_status(directory)
    if args.kb_command == "reviewed":
        return _kb_reviewed(directory, args.entry, args.langs)
    if args.kb_command == "teach":
        return _kb_teach(directory, args.entry, " ".join(args.question), args.lang)
    kb, issues = load_knowledge(directory)
    errors = [i for i in issues if i.level == "error"]
    warnings = [i for i in issues if i.level == "warning"]
    for issue in errors + warnings:
        print(issue)
    print(f"{len(kb)} entries loaded from {directory}: {len(errors)} error(s), "
          f"{len(warnings)} warning(s).")
    return 1 if errors else 0


def _kb_status(directory: Path) -> int:
    import datetime as dt

    from .freshness import status_table
    from .knowledge import load_knowledge

    kb, issues = load_knowledge(directory)
    lines, totals = status_table(kb, directory, dt.date.today())
    print("\n".join(lines))
    errors = [i for i in issues if i.level == "error"]
    if errors:
        broken = sorted({i.entry or i.file for i in errors})
        print("\nNot loaded (errors; run python main.py kb check): " + ", ".join(broken))
        for issue in errors:
            print(f"  {issue}")
    print("\nTotals per language:")
    for lang, t in totals.items():
        print(f"  {lang}: {t['ok']} ok, {t['stale']} stale, {t['edited']} edited, {t['new']} new, "
              f"{t['missing']} missing, {t['overdue']} overdue review")
    print("\nSTALE: another language's answer changed since this one was reviewed: update it, or "
          "if it is still right, run: python main.py kb reviewed ENTRY LANG\n"
          "edited: changed since its last review; once all languages agree, run: "
          "python main.py kb reviewed ENTRY")
    return 0


def _kb_teach(directory: Path, entry_id: str, question: str, lang: str | None) -> int:
    from .knowledge import load_knowledge
    from .langdetect import LanguageDetector
    from .teach import teach

    kb, _issues = load_knowledge(directory)
    if lang is None:
        texts = {lg: [] for lg in LANGUAGES}
        for entry in kb.entries.values():
            for lg, tr in entry.translations.items():
                texts[lg].extend(tr.phrasings)
        lang = LanguageDetector(texts).detect(question).language
        if lang is None:
            print("Could not tell the question's language: add --lang en, pt, es or ht.", file=sys.stderr)
            return 2
    result = teach(directory, entry_id, question, lang, kb=kb)
    print(result.message, file=sys.stdout if result.ok else sys.stderr)
    if result.ok:
        print("A running bot retrains within seconds (or send /reload).")
    return 0 if result.ok else 1


def _kb_reviewed(directory: Path, entry_id: str, langs: list[str]) -> int:
    from .freshness import mark_reviewed
    from .knowledge import load_knowledge

    unknown = [lang for lang in langs if lang not in LANGUAGES]
    if unknown:
        print(f"Unknown language(s): {', '.join(unknown)}. Use en, pt, es or ht.", file=sys.stderr)
        return 1
    kb, _issues = load_knowledge(directory)
    targets = sorted(kb.entries) if entry_id == "--all" or entry_id == "all" else [entry_id]
    for target in targets:
        if target not in kb.entries:
            print(f"No entry '{target}' (or it has errors: run python main.py kb check).", file=sys.stderr)
            return 1
        done = mark_reviewed(kb, directory, target, langs or None)
        print(f"{target}: marked reviewed: {', '.join(done)}")
    return 0


def cmd_report(args, settings: Settings) -> int:
    from .reports import staff_report
    from .storage import Database

    kb, _issues = _load_knowledge_or_exit(settings.knowledge_dir)
    db = Database(settings.database)
    print("\n".join(staff_report(db, kb, settings.knowledge_dir, days=args.days)))
    return 0


def cmd_roles(args, settings: Settings) -> int:
    from .storage import Database

    db = Database(settings.database)
    if args.roles_command == "list":
        people = db.people_with_roles()
        for chat_id, role in people:
            print(f"{chat_id}\t{role}")
        for chat_id in sorted(settings.admin_ids):
            print(f"{chat_id}\tadmin (BOT_ADMIN_IDS)")
        if not people and not settings.admin_ids:
            print("No one has a staff role yet. Give one with: python main.py roles grant ID editor "
                  "(or organizer, admin); or set BOT_ADMIN_IDS for admins.")
        return 0
    from .roles import staff_person

    key = staff_person(db, args.user_id)
    if key is None:
        print(f"{args.user_id!r} is not a Telegram user id (digits only, like 123456789) nor "
              "whatsapp:NUMBER or sms:NUMBER", file=sys.stderr)
        return 2
    changed = (db.grant if args.roles_command == "grant" else db.revoke)(key, args.role)
    print(("granted" if args.roles_command == "grant" else "revoked") if changed else "no change")
    return 0


def cmd_run(args, settings: Settings) -> int:
    import secrets

    from .logs import setup_logging
    setup_logging(os.environ.get("BOT_LOG_LEVEL", "INFO"), secrets=settings.secrets())
    if not settings.telegram_configured and not settings.http_configured:
        from .channels.runner import HOW_TO_CONFIGURE

        print(HOW_TO_CONFIGURE, file=sys.stderr)
        return 2
    engine = _engine(settings)
    if settings.http_configured:   # the bot's HTTP server, and Telegram beside it if configured
        import asyncio

        from .channels.runner import run_channels

        asyncio.run(run_channels(settings, engine, webhook_url=args.webhook_url, listen=args.listen,
                                 port=args.port, secret=os.environ.get("TELEGRAM_WEBHOOK_SECRET")
                                 or secrets.token_urlsafe(32)))
        return 0
    from .channels.telegram import run_telegram

    secret = (os.environ.get("TELEGRAM_WEBHOOK_SECRET") or secrets.token_urlsafe(32)) if args.webhook_url else None
    run_telegram(settings, engine, webhook_url=args.webhook_url, listen=args.listen, port=args.port,
                 secret=secret)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python main.py", description=(
        "Know-your-rights bot for immigrants in Massachusetts."))
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="talk to the bot in this terminal (no token needed)")
    chat.add_argument("--lang", choices=LANGUAGES, help="answer in this language")
    chat.set_defaults(func=cmd_chat)

    ask = sub.add_parser("ask", help="answer one question, or every line of standard input")
    ask.add_argument("--lang", choices=LANGUAGES, help="answer in this language (default: detect)")
    ask.add_argument("--json", action="store_true", help="one JSON object per line")
    ask.add_argument("question", nargs="*", help="the question (default: read lines from stdin)")
    ask.set_defaults(func=cmd_ask)

    kb = sub.add_parser("kb", help="check or dump the knowledge base")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    for name, text in (("check", "validate the knowledge base"), ("dump", "print it as JSON"),
                       ("status", "translations needing review, per entry and language"),
                       ("reviewed", "record that an entry's languages are reviewed as they are now"),
                       ("teach", "add a question people asked to an entry's examples (the bot retrains)")):
        p = kb_sub.add_parser(name, help=text)
        p.add_argument("--dir", help="knowledge folder (default: knowledge/)")
        if name == "reviewed":
            p.add_argument("entry", help="entry id, or 'all'")
            p.add_argument("langs", nargs="*", default=[], metavar="LANG",   # optional (default=[])
                           help="en, pt, es or ht (default: all four)")
        if name == "teach":
            p.add_argument("entry", help="entry id (the file name without .yaml)")
            p.add_argument("question", nargs="+", help="the question, as people wrote it")
            p.add_argument("--lang", choices=LANGUAGES, help="its language (default: detected)")
    kb.set_defaults(func=cmd_kb)

    report = sub.add_parser("report", help="what staff should fix: unanswered questions, unhelpful answers")
    report.add_argument("--days", type=int, default=30, help="look back this many days (default 30)")
    report.set_defaults(func=cmd_report)

    roles = sub.add_parser("roles", help="list, grant or revoke staff roles")
    roles_sub = roles.add_subparsers(dest="roles_command", required=True)
    roles_sub.add_parser("list", help="who has which role")
    for name in ("grant", "revoke"):
        p = roles_sub.add_parser(name, help=f"{name} a role")
        p.add_argument("user_id", help="Telegram user id, or whatsapp:NUMBER / sms:NUMBER")
        p.add_argument("role", choices=["editor", "organizer", "admin"])
    roles.set_defaults(func=cmd_roles)

    run = sub.add_parser("run", help="run the bot on every configured channel (Telegram, WhatsApp)")
    run.add_argument("--webhook-url", help="public HTTPS base URL: use a webhook instead of polling")
    run.add_argument("--port", type=int, default=8443, help="webhook port (default 8443)")
    run.add_argument("--listen", default="127.0.0.1",
                     help="webhook listen address (default 127.0.0.1: put an HTTPS proxy in front)")
    run.set_defaults(func=cmd_run)

    from .broadcast import add_cli as add_broadcast_cli   # broadcast send|list|status|resume|cancel
    add_broadcast_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return args.func(args, settings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:   # Ctrl-C while starting (training the matcher) or working: no traceback
        print(file=sys.stderr)
        return 130
    except Exception as exc:  # a clear message at start instead of a traceback
        from .i18n import MissingCatalog
        from .storage import StorageError

        if isinstance(exc, (MissingCatalog, StorageError)):
            print(f"Cannot start: {exc}", file=sys.stderr)
            return 2
        raise
