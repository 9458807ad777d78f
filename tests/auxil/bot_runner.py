"""Run the real Telegram application against the stand-in Bot API, for end-to-end tests."""

from __future__ import annotations

import asyncio
import inspect
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Awaitable, Callable, TypeVar

from bot.config import Settings
from bot.engine import Engine, Knowledge
from bot.storage import Database
from bot.telegram_app import build_application

from .fake_bot_api import FakeBotAPI

T = TypeVar("T")


def run_bot(api: FakeBotAPI, knowledge: Knowledge, database: Path,
            scenario: Callable[..., Awaitable[T]], **engine_options) -> T:
    """Start the bot (long polling) against `api`, run `scenario`, stop the bot cleanly.
    `engine_options` go to Engine (admin_ids, knowledge_dir). A scenario that takes an argument
    gets the running Application (its job queue, bot_data)."""

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
                    if inspect.signature(scenario).parameters:
                        return await scenario(application)
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


HELP_START = "I answer questions about immigrants' rights in Massachusetts"


def is_help_reply(call) -> bool:
    """A recorded sendMessage is the English /help reply: its text (with the command list) and its
    one button, the menu."""
    return (call.params["text"].startswith(HELP_START) and "\n/subscribe — " in call.params["text"]
            and buttons_of(call) == [{"text": "☰ Menu", "callback_data": "m@en"}])


# What a reply is, from what the stand-in recorded: the buttons' data carry the entry and the
# language the reply was written in ("h:ice-at-home:y@pt", "m@pt"), the text its wording.
FALLBACK_START = {"en": "Sorry, I don't have an answer to that.",
                  "pt": "Desculpe, não tenho uma resposta para isso."}
HOTLINE, EMERGENCY = "617-370-5023", "911"


def button_data(call) -> list[str]:
    return [b["callback_data"] for b in buttons_of(call)]


def assert_answer(call, kb, entry_id: str, lang: str) -> None:
    """The call is the answer of entry `entry_id` in `lang`: its title and answer, then "Did this
    help?" for that entry, its related entries and the menu, all in `lang`."""
    from bot.telegram_html import escape

    entry = kb.entries[entry_id]
    tr = entry.text(lang)
    expected = ([f"h:{entry_id}:y@{lang}", f"h:{entry_id}:n@{lang}"]
                + [f"a:{r}@{lang}" for r in entry.related if r in kb.entries] + [f"m@{lang}"])
    assert button_data(call) == expected, (entry_id, lang, call.params["text"][:300])
    assert f"<b>{escape(tr.title)}</b>\n\n{tr.answer}" in call.params["text"]
    related = [b["text"] for b in buttons_of(call)][2:-1]
    assert related == [kb.entries[r].text(lang).title for r in entry.related if r in kb.entries]


def assert_fallback(call, lang: str) -> None:
    """The call is the honest "no answer" in `lang`: the hotline and 911, the menu and "who to call"."""
    text = call.params["text"]
    assert text.startswith(FALLBACK_START[lang]), text[:300]
    assert HOTLINE in text and EMERGENCY in text
    assert button_data(call) == [f"m@{lang}", f"a:emergency-contacts@{lang}"]


ROOT = Path(__file__).resolve().parents[2]
# what a log line of the bot's own failure looks like on `python main.py run`'s standard error
FAILURE_MARKS = ("Traceback (most recent call last)", " ERROR ", " CRITICAL ")


def stop_process(process: subprocess.Popen | None, stderr_file) -> int | None:
    """Stop a bot process as a service manager does (SIGTERM, then SIGKILL after 30 s), close the
    file its output went to, and return its exit status."""
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    stderr_file.close()
    return process.returncode if process is not None else None


class BotProcess:
    """`python main.py run ARGS` as its own process against the stand-in Bot API, exactly as an
    operator starts it (environment settings, `setup_logging`, `build_application`, polling or
    webhook). Standard error goes to a file: `log()` reads what the operator's terminal shows."""

    def __init__(self, api: FakeBotAPI, database: Path, *args: str, env: dict[str, str] | None = None):
        import os

        self.api = api
        self.log_path = Path(database).with_suffix(".stderr.log")
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BOT_"))}
        environment.update({"TELEGRAM_BOT_TOKEN": api.token, "TELEGRAM_API_BASE_URL": api.base_url,
                            "BOT_DATABASE": str(database), **(env or {})})
        self.command = [sys.executable, "main.py", "run", *args]
        self.environment = environment
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "BotProcess":
        self._stderr = open(self.log_path, "w", encoding="utf-8")
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.environment,
                                        stdout=subprocess.DEVNULL, stderr=self._stderr)
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; returns the exit status."""
        return stop_process(self.process, self._stderr)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, predicate, timeout: float = 90.0, start: int = 0):
        """The stand-in's `wait_for`, failing at once (with the log) if the bot process died."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.api.wait_for(predicate, timeout=0.2, start=start)
            except AssertionError:
                if not self.alive():
                    raise AssertionError(f"the bot process exited ({self.process.returncode}):\n"
                                         + self.log()) from None
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out; the bot's log:\n{self.log()}") from None

    def failures(self) -> list[str]:
        """Log lines (and tracebacks) that say the bot failed."""
        return [line for line in self.log().splitlines() if any(m in line for m in FAILURE_MARKS)]
