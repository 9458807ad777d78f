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


def _engine(settings: Settings, database: str | Path | None = None):
    from .engine import Engine, Knowledge
    from .i18n import load_catalogs
    from .storage import Database

    load_catalogs()
    kb, _issues = _load_knowledge_or_exit(settings.knowledge_dir)
    return Engine(Knowledge.build(kb), Database(database or settings.database), settings.admin_ids)


def cmd_chat(args, settings: Settings) -> int:
    from .terminal import TERMINAL_USER_ID, TerminalChat

    engine = _engine(settings)
    if args.lang:
        engine.db.set_language(TERMINAL_USER_ID, args.lang)
    TerminalChat(engine, language=args.lang).run(sys.stdin)
    return 0


def cmd_ask(args, settings: Settings) -> int:
    from .telegram_html import to_plain

    engine = _engine(settings, database=":memory:")
    questions = [" ".join(args.question)] if args.question else (line.rstrip("\n") for line in sys.stdin)
    for question in questions:
        if not question.strip():
            continue
        response = engine.ask(question, args.lang)
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
            outcome = match.outcome if match else "none"
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
    kb, issues = load_knowledge(directory)
    errors = [i for i in issues if i.level == "error"]
    warnings = [i for i in issues if i.level == "warning"]
    for issue in errors + warnings:
        print(issue)
    print(f"{len(kb)} entries loaded from {directory}: {len(errors)} error(s), "
          f"{len(warnings)} warning(s).")
    return 1 if errors else 0


def cmd_run(args, settings: Settings) -> int:
    import secrets

    from .logs import setup_logging
    from .telegram_app import build_application

    setup_logging(os.environ.get("BOT_LOG_LEVEL", "INFO"), secrets=[settings.token or ""])
    settings.require_token()
    engine = _engine(settings)
    application = build_application(settings, engine)
    if args.webhook_url:
        secret = os.environ.get("TELEGRAM_WEBHOOK_SECRET") or secrets.token_urlsafe(32)
        application.run_webhook(listen=args.listen, port=args.port, url_path="telegram",
                                webhook_url=args.webhook_url.rstrip("/") + "/telegram",
                                secret_token=secret)
    else:
        application.run_polling()
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
    for name, text in (("check", "validate the knowledge base"), ("dump", "print it as JSON")):
        p = kb_sub.add_parser(name, help=text)
        p.add_argument("--dir", help="knowledge folder (default: knowledge/)")
    kb.set_defaults(func=cmd_kb)

    run = sub.add_parser("run", help="run the bot on Telegram (needs TELEGRAM_BOT_TOKEN)")
    run.add_argument("--webhook-url", help="public HTTPS base URL: use a webhook instead of polling")
    run.add_argument("--port", type=int, default=8443, help="webhook port (default 8443)")
    run.add_argument("--listen", default="0.0.0.0", help="webhook listen address")
    run.set_defaults(func=cmd_run)
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
    except Exception as exc:  # a clear message at start instead of a traceback
        from .i18n import MissingCatalog
        from .storage import StorageError

        if isinstance(exc, (MissingCatalog, StorageError)):
            print(f"Cannot start: {exc}", file=sys.stderr)
            return 2
        raise
