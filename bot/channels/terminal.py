"""The bot in a terminal: the same engine and menus, buttons shown as numbered choices.

Works with no token and no network, interactively or with questions piped on standard input.
Typing a number presses the button with that number from the last reply.
"""

from __future__ import annotations

import sys
from typing import TextIO

from ..engine import Button, Engine, Incoming, Reply
from ..telegram_html import to_plain

TERMINAL_USER_ID = 0  # the terminal is one local person, stored like any other


class TerminalChat:
    def __init__(self, engine: Engine, out: TextIO = sys.stdout, user_id: int = TERMINAL_USER_ID,
                 language: str | None = None):
        self.engine = engine
        self.out = out
        self.user_id = user_id
        self.language = language
        self.choices: list[Button] = []

    def send(self, text: str) -> None:
        """Handle one line typed by the person and print the replies."""
        text = text.strip()
        if text.isdigit() and self.choices and 1 <= int(text) <= len(self.choices):
            incoming = Incoming(self.user_id, button=self.choices[int(text) - 1].data,
                                language_hint=self.language)
        else:
            incoming = Incoming(self.user_id, text=text, language_hint=self.language)
        response = self.engine.handle(incoming)
        self.choices = []
        for reply in response.replies:
            self._print(reply)

    def _print(self, reply: Reply) -> None:
        print(to_plain(reply.text), file=self.out)
        for row in reply.buttons:
            for button in row:
                self.choices.append(button)
                print(f"  [{len(self.choices)}] {button.label}", file=self.out)
        print(file=self.out)

    def run(self, stdin: TextIO = sys.stdin) -> None:
        interactive = stdin.isatty()
        self.send("/start")
        while True:
            if interactive:
                print("> ", end="", file=self.out, flush=True)
            line = stdin.readline()
            if not line:
                break
            if line.strip().lower() in {"/quit", "/exit", "quit", "exit"}:
                break
            if not interactive:
                print(f"> {line.rstrip()}", file=self.out)
            self.send(line)
