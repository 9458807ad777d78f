"""Mask personal data in text that staff will read (questions the bot could not answer)."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_URL = re.compile(r"https?://\S+|www\.\S+", re.I)
# A-numbers: "A123456789", "A-123 456 789", "A# 12345678", "a number 123456789"
_A_NUMBER = re.compile(r"\b[Aa]\s*[-#:.]?\s*(\d[\s-]?){7,8}\d\b")
_PHONE = re.compile(r"(?<!\w)\+?\d?[\s.-]?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?!\w)")
_LONG_DIGITS = re.compile(r"\d(?:[\s.-]?\d){4,}")   # 5+ digits: case, ID, card, account numbers
_HANDLE = re.compile(r"(?<!\w)@\w{3,}")


def mask_personal_data(text: str) -> str:
    """Replace emails, links, @handles, A-numbers, phone numbers and long digit runs with
    placeholders, keeping the words that tell staff what was asked."""
    text = _EMAIL.sub("[email]", text)
    text = _URL.sub("[link]", text)
    text = _HANDLE.sub("[handle]", text)
    text = _A_NUMBER.sub("[A-number]", text)
    text = _PHONE.sub("[phone]", text)
    text = _LONG_DIGITS.sub("[number]", text)
    return " ".join(text.split())
