"""Moved to bot/features/broadcasts/ (issue 12): content.py (topics, render, announcement files)
and cli.py (`python main.py broadcast ...`); this name is kept for existing imports."""

from .features.broadcasts.cli import add_cli, cmd_broadcast  # noqa: F401
from .features.broadcasts.content import *  # noqa: F401,F403
from .features.broadcasts.content import _parse_time, _utc_text  # noqa: F401
