"""The bot in a terminal: the same engine and menus, buttons shown as numbered choices.

Works with no token and no network, interactively or with questions piped on standard input.
Typing a number presses the button with that number from the last reply. Interactively the line
can be edited and earlier lines recalled with the arrow keys (readline; the history is kept in
memory only, never written to a file), and Ctrl-D, Ctrl-C, `quit` or `exit` leave.
"""

from __future__ import annotations

import sys
from typing import TextIO

from ..engine import Button, Engine, Incoming, Reply
from ..i18n import translate
from ..languages import DEFAULT_LANGUAGE
from ..telegram_html import to_plain

TERMINAL_USER_ID = 0  # the terminal is one local person, stored like any other
LEAVE = {"/quit", "/exit", "quit", "exit"}
MAX_CHOICE_DIGITS = 3   # "99" or "0" picks a choice (or says there is none); longer numbers are text


class TerminalChat:
    def __init__(self, engine: Engine, out: TextIO = sys.stdout, user_id: int = TERMINAL_USER_ID,
                 language: str | None = None):
        self.engine = engine
        self.out = out
        self.user_id = user_id
        self.language = language   # the session's language: the last one the bot answered in
        self.choices: list[Button] = []

    def send(self, text: str) -> None:
        """Handle one line typed by the person and print the replies."""
        text = text.strip()
        if text.isascii() and text.isdigit() and len(text) <= MAX_CHOICE_DIGITS:
            if not 1 <= int(text) <= len(self.choices):
                self._say_no_choice(text)
                return
            incoming = Incoming(self.user_id, button=self.choices[int(text) - 1].data,
                                language_hint=self.language)
        else:
            incoming = Incoming(self.user_id, text=text, language_hint=self.language)
        response = self.engine.handle(incoming)
        self.language = response.language
        self.choices = []
        for reply in response.replies:
            self._print(reply)

    def _say_no_choice(self, number: str) -> None:
        lang = self.language or DEFAULT_LANGUAGE
        if self.choices:
            text = translate(lang, "There is no choice {number}: type a number from 1 to {last}, or "
                                   "write your question.", number=number, last=len(self.choices))
        else:
            text = translate(lang, "There is nothing to choose now: write your question, or /menu.")
        print(text + "\n", file=self.out)

    def _print(self, reply: Reply) -> None:
        print(to_plain(reply.text), file=self.out)
        for row in reply.buttons:
            for button in row:
                self.choices.append(button)
                print(f"  [{len(self.choices)}] {button.label}", file=self.out)
        print(file=self.out)

    def run(self, stdin: TextIO = sys.stdin) -> None:
        interactive = stdin.isatty() and stdin is sys.stdin
        if interactive:
            try:
                import readline  # noqa: F401 - input() then edits lines and keeps a history
            except ImportError:   # not on every platform: plain input() still works
                pass
        try:
            self.send("/start")
            if interactive:
                print(translate(self.language or DEFAULT_LANGUAGE, "Type a number to choose, or your "
                                "question. To leave: quit, exit or Ctrl-D.") + "\n", file=self.out)
            while True:
                if interactive:
                    try:
                        line = input("> ")
                    except EOFError:      # Ctrl-D: leave on a line of its own
                        print(file=self.out)
                        return
                else:
                    line = stdin.readline()
                    if not line:
                        return
                if line.strip().lower() in LEAVE:
                    return
                if not interactive:
                    print(f"> {line.rstrip()}", file=self.out)
                self.send(line)
        except KeyboardInterrupt:         # Ctrl-C: leave quietly, no traceback
            print(file=self.out)
