"""Moved to bot/features/subscriptions.py (issue 12); this name is kept for existing imports."""

import sys

from .features import subscriptions as _moved

sys.modules[__name__] = _moved
