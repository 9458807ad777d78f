"""Logging that keeps secrets and people out of the log.

At the default level the bot logs events (an answer was given, a button was stale), never message
text and never user ids. The bot token is redacted from every record, tracebacks included, and
httpx's request lines (which contain the token in the URL) are silenced.
"""

from __future__ import annotations

import logging
import re

_TOKEN_SHAPE = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}")


class RedactSecrets(logging.Filter):
    """Replace the bot token (and anything shaped like a token) in a record with [TOKEN]."""

    def __init__(self, secrets: list[str] | None = None):
        super().__init__()
        self.secrets = [s for s in (secrets or []) if s]

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[TOKEN]")
        return _TOKEN_SHAPE.sub("[TOKEN]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            formatter = logging.Formatter()
            message += "\n" + formatter.formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg = self._clean(message)
        record.args = ()
        return True


def setup_logging(level: str = "INFO", secrets: list[str] | None = None) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if level == "DEBUG":
        logging.getLogger(__name__).warning(
            "DEBUG logging is on: logs may now contain message text and user ids. Turn it off "
            "(BOT_LOG_LEVEL=INFO) once you are done.")
