"""Moved to bot/features/broadcasts/composer.py (issue 12); this name is kept for existing imports."""

import sys

from .features.broadcasts import composer as _moved

sys.modules[__name__] = _moved
