"""Property-based: whatever text, button data or language hint arrives, the engine answers
within Telegram's limits, in a supported language, and never raises."""

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.engine import Engine, Incoming
from bot.languages import LANGUAGES
from bot.telegram_html import TELEGRAM_LIMIT, check_html, split_message

_ids = itertools.count(10_000)
hints = st.one_of(st.none(), st.sampled_from(["en", "pt-br", "es-419", "ht", "fr", "", "zz-ZZ"]),
                  st.text(max_size=12))
texts = st.one_of(st.text(max_size=300), st.text(min_size=3000, max_size=4096),
                  st.sampled_from(["/start", "/menu", "/forget", "/x@bot", "/", "Kreyòl", "ice",
                                   "\u202e\u200f", "مرحبا ما هي حقوقي", "\x00\x07", "🙏" * 50]))
button_data = st.one_of(st.text(max_size=80),
                        st.sampled_from(["a:ice-at-home@pt", "c:rights@ht", "m", "l:es", "lp", "f:no",
                                         "a:@", "@@@", "c:", "l:xx@yy"]))


def assert_within_limits(response):
    assert response.language in LANGUAGES
    assert response.replies
    for reply in response.replies:
        assert reply.text.strip()
        assert check_html(reply.text) == [], reply.text
        assert all(len(part) <= TELEGRAM_LIMIT for part in split_message(reply.text))
        for row in reply.buttons:
            for button in row:
                assert button.label.strip()
                assert len(button.data.encode()) <= 64


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, hint=hints)
def test_any_text(engine: Engine, text, hint):
    assert_within_limits(engine.handle(Incoming(next(_ids), text=text, language_hint=hint)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=button_data, hint=hints)
def test_any_button(engine: Engine, data, hint):
    assert_within_limits(engine.handle(Incoming(next(_ids), button=data, language_hint=hint)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200), lang=st.sampled_from([None, *LANGUAGES]))
def test_ask_any_text(engine: Engine, text, lang):
    response = engine.ask(text, lang)
    assert_within_limits(response)
    if lang:
        assert response.language == lang
