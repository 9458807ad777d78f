"""Moved to bot/channels/terminal.py (issue 12); this name is kept for existing imports."""

import sys

from .channels import terminal as _terminal

sys.modules[__name__] = _terminal
