"""Shared fixtures: the real knowledge base, a real SQLite file, an engine over both."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.engine import Engine, Knowledge  # noqa: E402
from bot.i18n import load_catalogs  # noqa: E402
from bot.knowledge import load_knowledge  # noqa: E402
from bot.storage import Database  # noqa: E402


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


@pytest.fixture
def api():
    """The stand-in Telegram Bot API on 127.0.0.1, for end-to-end tests."""
    from auxil.fake_bot_api import FakeBotAPI

    with FakeBotAPI() as server:
        yield server


@pytest.fixture
def engine(knowledge, db):
    return Engine(knowledge, db)
