"""Telegram HTML: what its parser would reject, plain rendering, and clean splitting."""

import pytest

from bot.telegram_html import TELEGRAM_LIMIT, check_html, split_message, to_plain


@pytest.mark.parametrize("text", [
    "<b>Do not open the door.</b>\n• Ask for a warrant",
    'See <a href="https://locator.ice.gov">locator.ice.gov</a> &amp; call',
    "A &lt; B &gt; C &#233; &quot;q&quot;",
    "<b><i>nested</i></b>",
])
def test_valid_html(text):
    assert check_html(text) == []


@pytest.mark.parametrize("text, fragment", [
    ("Tom & Jerry", "&amp;"),
    ("<b>open", "unclosed"),
    ("<b><i>x</b></i>", "close in order"),
    ("<div>x</div>", "not allowed"),
    ("<a>link</a>", "href"),
    ("a < b", "&lt;"),
    ("&nbsp;", "not an entity"),
    ("<br/>", "self-closing"),
])
def test_invalid_html(text, fragment):
    problems = check_html(text)
    assert any(fragment in p for p in problems), problems


def test_to_plain_keeps_link_addresses():
    text = '<b>Find</b> them: <a href="https://locator.ice.gov">the locator</a> &amp; more'
    assert to_plain(text) == "Find them: the locator (https://locator.ice.gov) & more"


def test_short_message_is_not_split():
    assert split_message("<b>hi</b>") == ["<b>hi</b>"]


def test_long_message_splits_at_lines_without_cutting_tags():
    line = "<b>Bold line</b> " + "word " * 30
    text = "\n".join([line] * 200)
    parts = split_message(text)
    assert len(parts) > 1
    assert all(len(p) <= TELEGRAM_LIMIT for p in parts)
    assert all(check_html(p) == [] for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")


def test_single_huge_line_is_split_at_spaces_and_stays_valid():
    text = "<b>x</b> " + "palavra & " * 1000
    parts = split_message(text)
    assert all(len(p) <= TELEGRAM_LIMIT for p in parts)
    assert all(check_html(p) == [] for p in parts)
    assert sum(to_plain(p).count("palavra") for p in parts) == 1000
