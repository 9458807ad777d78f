"""Run `python main.py ...` as a person would, in a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def run_main(*args, env=None, stdin="", timeout=180) -> subprocess.CompletedProcess:
    """main.py with none of this shell's TELEGRAM_/BOT_ settings (but the test run's shared model
    cache, so that the bot loads its trained model instead of training it again), plus `env`."""
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("TELEGRAM_", "BOT_")) or k == "BOT_MODEL_CACHE"}
    environment.update(env or {})
    return subprocess.run([sys.executable, "main.py", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, env=environment, timeout=timeout)
