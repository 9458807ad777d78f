"""`python main.py run` as its own process serving the bot's HTTP server (web chat, SMS), exactly as
an operator starts it, for end-to-end tests: environment settings, a real SQLite file, the real or
a copied knowledge base. Standard error goes to a file that `log()` reads."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from auxil.bot_runner import stop_process

ROOT = Path(__file__).resolve().parents[2]
FAILURE_MARKS = ("Traceback", " ERROR ", " CRITICAL ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def knowledge_copy(tmp: Path, *entries: dict) -> Path:
    """The real knowledge base copied into `tmp`, with extra entries (kb_fixtures.entry_data)."""
    from .kb_fixtures import write_entry

    target = tmp / "knowledge"
    shutil.copytree(ROOT / "knowledge", target)
    for data in entries:
        write_entry(target, data)
    return target


class HttpBot:
    def __init__(self, tmp: Path, env: dict[str, str], ready_path: str = "/", timeout: float = 180):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.database = tmp / "bot.sqlite3"
        self.log_path = tmp / "bot.stderr.log"
        environment = {k: v for k, v in os.environ.items()
                       if not k.startswith(("TELEGRAM_", "BOT_", "WHATSAPP_", "TWILIO_"))}
        environment.update({"BOT_HTTP_PORT": str(self.port), "BOT_DATABASE": str(self.database), **env})
        self._stderr = open(self.log_path, "w", encoding="utf-8")
        self.process = subprocess.Popen([sys.executable, "main.py", "run"], cwd=ROOT, env=environment,
                                        stdout=subprocess.DEVNULL, stderr=self._stderr)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError("the bot exited:\n" + self.log())
            try:
                with urllib.request.urlopen(self.base + ready_path, timeout=2):
                    return
            except urllib.error.HTTPError:
                return   # it answers (405 for a POST-only path): it is up
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the bot did not start:\n" + self.log())
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def failures(self) -> list[str]:
        return [line for line in self.log().splitlines() if any(m in line for m in FAILURE_MARKS)]

    def stop(self) -> int:
        return stop_process(self.process, self._stderr)
