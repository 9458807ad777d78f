"""Run the real Telegram application against the stand-in Bot API, for end-to-end tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Awaitable, Callable, TypeVar

from bot.config import Settings
from bot.engine import Engine, Knowledge
from bot.storage import Database
from bot.telegram_app import build_application

from .fake_bot_api import FakeBotAPI

T = TypeVar("T")


def run_bot(api: FakeBotAPI, knowledge: Knowledge, database: Path,
            scenario: Callable[[], Awaitable[T]], **engine_options) -> T:
    """Start the bot (long polling) against `api`, run `scenario`, stop the bot cleanly.
    `engine_options` go to Engine (admin_ids, knowledge_dir)."""

    async def main() -> T:
        db = Database(database)
        settings = Settings(token=api.token, api_base_url=api.base_url, database=database)
        application = build_application(settings, Engine(knowledge, db, **engine_options))
        try:
            async with application:
                await application.post_init(application)   # run_polling would call these two
                application.post_stop_hook = application.post_stop
                await application.updater.start_polling(poll_interval=0, timeout=1)
                await application.start()
                try:
                    return await scenario()
                finally:
                    await application.updater.stop()
                    await application.stop()
                    await application.post_stop_hook(application)
        finally:
            db.close()

    return asyncio.run(main())


def buttons_of(call) -> list[dict]:
    """The inline buttons of a recorded sendMessage/editMessageText call, flattened."""
    markup = call.params.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def sent_to(chat_id):
    """A predicate for `api.await_call`: a successful sendMessage to this chat."""
    return lambda c: c.method == "sendMessage" and c.params.get("chat_id") == chat_id and c.ok
