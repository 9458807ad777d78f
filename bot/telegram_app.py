"""Moved to bot/channels/telegram.py (issue 12); this name is kept for existing imports."""

import sys

from .channels import telegram as _telegram

sys.modules[__name__] = _telegram
