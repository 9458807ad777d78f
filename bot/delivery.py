"""Moved to bot/features/broadcasts/delivery.py (issue 12); this name is kept for existing imports."""

import sys

from .features.broadcasts import delivery as _moved

sys.modules[__name__] = _moved
