"""Shared fixtures: the real knowledge base, a real SQLite file, an engine over both."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.engine import Engine, Knowledge  # noqa: E402
from bot.i18n import load_catalogs  # noqa: E402
from bot.knowledge import load_knowledge  # noqa: E402
from bot.storage import Database  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def shared_model_cache(tmp_path_factory):
    """One folder of trained matcher models for the whole run, so that every bot process the tests
    start (they inherit BOT_MODEL_CACHE) loads the model instead of training it again."""
    import os

    from bot.matcher import set_model_cache
    from bot.nlu.model import ModelCache

    folder = tmp_path_factory.mktemp("model-cache")
    os.environ["BOT_MODEL_CACHE"] = str(folder)
    set_model_cache(ModelCache(folder))
    yield folder
    os.environ.pop("BOT_MODEL_CACHE", None)


@pytest.fixture(scope="session")
def real_kb():
    kb, issues = load_knowledge(ROOT / "knowledge")
    errors = [str(i) for i in issues if i.level == "error"]
    assert not errors, "\n".join(errors)
    return kb


@pytest.fixture(scope="session")
def knowledge(real_kb):
    load_catalogs()
    return Knowledge.build(real_kb)


@pytest.fixture
def db(tmp_path):
    database = Database(tmp_path / "bot.sqlite3")
    yield database
    database.close()


class BotErrors(logging.Handler):
    """Every record at ERROR or above while a test runs: the bot's on_error ("error while handling
    an update"), python-telegram-bot's own reports, a crashed task ("Task exception was never
    retrieved"), the broadcast service's. A test that provokes one on purpose says so with
    `expect(...)`."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self._expected: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def expect(self, text: str) -> None:
        """Records whose message or traceback contains `text` are expected in this test."""
        self._expected.append(text)

    @staticmethod
    def describe(record: logging.LogRecord) -> str:
        text = f"{record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        elif record.exc_text:
            text += "\n" + record.exc_text
        return text

    def unexpected(self) -> list[str]:
        described = [self.describe(r) for r in self.records]
        return [d for d in described if not any(e in d for e in self._expected)]


@pytest.fixture
def bot_errors():
    """Collects ERROR records (see BotErrors); `api`'s teardown fails the test on any."""
    handler = BotErrors()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@pytest.fixture
def api(bot_errors):
    """The stand-in Telegram Bot API on 127.0.0.1, for end-to-end tests. After the test, it fails
    if the stand-in itself raised while answering (`server_errors`) or if the bot logged an error
    (it raised while handling an update, a job or a broadcast): a test that only checks what was
    sent would otherwise pass when a handler crashed and sent nothing."""
    from auxil.fake_bot_api import FakeBotAPI

    with FakeBotAPI() as server:
        yield server
    problems = [f"the stand-in Bot API raised: {exc!r}" for exc in server.server_errors]
    problems += [f"the bot logged: {text}" for text in bot_errors.unexpected()]
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def engine(knowledge, db):
    return Engine(knowledge, db)
