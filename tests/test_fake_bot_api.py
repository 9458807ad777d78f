"""Tests of tests/auxil/fake_bot_api.py, driving the REAL python-telegram-bot against it.

Plain asyncio (``asyncio.run`` inside sync tests): no pytest-asyncio needed.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import sys
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import telegram
from telegram import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import (
    BadRequest,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.auxil.fake_bot_api import Call, FakeBotAPI  # noqa: E402

T = TypeVar("T")

# PTB 22 itself warns (inside RetryAfter.__init__) that retry_after will become a timedelta.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")


@pytest.fixture
def api() -> Iterator[FakeBotAPI]:
    with FakeBotAPI() as fake:
        yield fake
    assert fake.server_errors == [], "the stand-in raised while answering (a bug in it)"


def make_bot(api: FakeBotAPI) -> telegram.Bot:
    return telegram.Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url)


def with_bot(api: FakeBotAPI, body: Callable[[telegram.Bot], Awaitable[T]]) -> T:
    """Run ``body(bot)`` with an initialized real ``telegram.Bot`` pointed at the fake."""

    async def runner() -> T:
        async with make_bot(api) as bot:
            return await body(bot)

    return asyncio.run(runner())


def retry_seconds(exc: RetryAfter) -> float:
    """``RetryAfter.retry_after`` in seconds, whether PTB gives an int or a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value: Any = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


# --------------------------------------------------------------------------- basics


def test_base_urls_and_bot_id() -> None:
    api = FakeBotAPI(token="987654:OTHER", bot_username="other_bot")
    api.start()
    try:
        assert api.bot_id == 987654
        assert api.base_url == f"http://127.0.0.1:{api.port}/bot"
        assert api.base_file_url == f"http://127.0.0.1:{api.port}/file/bot"
        me = with_bot(api, lambda bot: bot.get_me())
        assert me.id == 987654 and me.username == "other_bot"
    finally:
        api.stop()
    api.stop()  # idempotent


def test_get_me_returns_the_bot(api: FakeBotAPI) -> None:
    async def body(bot: telegram.Bot) -> tuple[telegram.User, str]:
        return await bot.get_me(), bot.username

    me, username = with_bot(api, body)
    assert me.id == api.bot_id == 123456
    assert me.is_bot is True
    assert me.username == "pmc_test_bot" == username
    assert [c.method for c in api.calls].count("getMe") >= 1
    assert all(c.ok for c in api.requests("getMe"))


def test_send_message_returns_message_and_records_decoded_params(api: FakeBotAPI) -> None:
    markup = InlineKeyboardMarkup(
        [[InlineKeyboardButton("Yes", callback_data="ans:yes")],
         [InlineKeyboardButton("Docs", url="https://example.org")]]
    )

    async def body(bot: telegram.Bot) -> tuple[telegram.Message, telegram.Message]:
        first = await bot.send_message(42, "123", reply_markup=markup, parse_mode="HTML")
        second = await bot.send_message(42, "second")
        return first, second

    first, second = with_bot(api, body)
    assert isinstance(first, telegram.Message)
    assert first.message_id == 1 and second.message_id == 2
    assert first.chat.id == 42 and first.chat.type == "private"
    assert first.text == "123"
    assert first.from_user is not None and first.from_user.id == api.bot_id
    assert first.reply_markup == markup

    call = api.requests("sendMessage")[0]
    assert isinstance(call, Call) and call.ok and call.error_code is None
    assert call.params["chat_id"] == 42  # JSON-decoded to int
    assert call.params["text"] == "123"  # string parameter kept verbatim
    assert call.params["parse_mode"] == "HTML"
    assert call.params["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Yes", "callback_data": "ans:yes"}],
            [{"text": "Docs", "url": "https://example.org"}],
        ]
    }
    assert call.result["message_id"] == 1
    assert api.sent_texts() == ["123", "second"]
    assert api.sent_texts(chat_id=42) == ["123", "second"]
    assert api.sent_texts(chat_id=43) == []
    stored = api.get_message(42, 1)
    assert stored is not None and stored["reply_markup"] == call.params["reply_markup"]


def test_send_message_validation_like_telegram(api: FakeBotAPI) -> None:
    too_long_data = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 65)]])

    async def body(bot: telegram.Bot) -> list[str]:
        errors = []
        for kwargs in (
            {"text": "x" * 4097},
            {"text": "ok", "reply_markup": too_long_data},
        ):
            with pytest.raises(BadRequest) as info:
                await bot.send_message(5, **kwargs)
            errors.append(info.value.message)
        # 4096 visible characters are fine even with HTML tags around them
        await bot.send_message(5, "<b>" + "y" * 4096 + "</b>", parse_mode="HTML")
        return errors

    errors = with_bot(api, body)
    assert errors == ["Message is too long", "Button_data_invalid"]
    assert [c.error_code for c in api.requests("sendMessage")] == [400, 400, None]


# --------------------------------------------------------------------------- updates


def test_get_updates_returns_pushed_messages_and_honours_offset(api: FakeBotAPI) -> None:
    pushed = api.push_message(7, "/start payload", language_code="de")
    api.push_message(7, "hello")
    assert pushed["update_id"] == 1
    assert api.pending_updates() == 2

    async def body(bot: telegram.Bot) -> tuple[Any, ...]:
        everything = await bot.get_updates()
        after_first = await bot.get_updates(offset=2)
        again = await bot.get_updates()  # update 1 was confirmed by offset=2
        confirmed = await bot.get_updates(offset=3)
        limited = await bot.get_updates(limit=1)
        return everything, after_first, again, confirmed, limited

    everything, after_first, again, confirmed, limited = with_bot(api, body)
    assert [u.update_id for u in everything] == [1, 2]
    start = everything[0].message
    assert isinstance(everything[0], Update)
    assert start.text == "/start payload"
    assert start.from_user.id == 7 and start.from_user.language_code == "de"
    assert start.chat.id == 7 and start.chat.type == "private"
    assert start.message_id == 1 and everything[1].message.message_id == 2
    assert start.entities[0].type == "bot_command"
    assert (start.entities[0].offset, start.entities[0].length) == (0, len("/start"))
    assert everything[1].message.entities == ()
    assert [u.update_id for u in after_first] == [2]
    assert [u.update_id for u in again] == [2]
    assert confirmed == () and limited == ()
    assert api.pending_updates() == 0
    offsets = [c.params.get("offset") for c in api.requests("getUpdates")]
    assert offsets == [None, 2, None, 3, None]


def test_push_update_any_kind_and_group_chats(api: FakeBotAPI) -> None:
    api.push_update(
        {
            "message": {
                "message_id": 50,
                "date": int(time.time()),
                "chat": {"id": 9, "type": "private", "first_name": "S"},
                "from": {"id": 9, "is_bot": False, "first_name": "S"},
                "sticker": {
                    "file_id": "STK", "file_unique_id": "U1", "type": "regular",
                    "width": 512, "height": 512, "is_animated": False, "is_video": False,
                },
            }
        }
    )
    api.push_message(9, "/help@pmc_test_bot", chat_id=-1001234, chat_type="supergroup")
    api.push_update({"update_id": 999, "my_chat_member": {
        "chat": {"id": 9, "type": "private", "first_name": "S"},
        "from": {"id": 9, "is_bot": False, "first_name": "S"},
        "date": int(time.time()),
        "old_chat_member": {"status": "member", "user": api.bot_user},
        "new_chat_member": {"status": "kicked", "user": api.bot_user, "until_date": 0},
    }})

    async def body(bot: telegram.Bot) -> tuple[Update, ...]:
        ups = await bot.get_updates()
        reply = await bot.send_message(9, "next id", reply_to_message_id=50)
        return (*ups, reply)

    sticker_update, group_update, member_update, reply = with_bot(api, body)
    assert [sticker_update.update_id, group_update.update_id, member_update.update_id] == [1, 2, 3]
    assert sticker_update.message.sticker.file_id == "STK"
    assert group_update.message.chat.type == "supergroup"
    assert group_update.message.chat.id == -1001234
    assert group_update.message.entities[0].length == len("/help@pmc_test_bot")
    assert member_update.my_chat_member.new_chat_member.status == "kicked"
    assert reply.message_id == 51  # continues after the pushed message
    assert reply.reply_to_message is not None and reply.reply_to_message.message_id == 50


def test_long_poll_returns_as_soon_as_a_message_is_pushed(api: FakeBotAPI) -> None:
    timer = threading.Timer(0.3, api.push_message, args=(11, "wake up"))

    async def body(bot: telegram.Bot) -> tuple[Any, float, Any, float]:
        t0 = time.monotonic()
        timer.start()
        got = await bot.get_updates(timeout=2)
        elapsed = time.monotonic() - t0
        t1 = time.monotonic()
        empty = await bot.get_updates(offset=got[-1].update_id + 1, timeout=1)
        return got, elapsed, empty, time.monotonic() - t1

    got, elapsed, empty, empty_elapsed = with_bot(api, body)
    timer.join()
    assert [u.message.text for u in got] == ["wake up"]
    assert 0.25 <= elapsed < 1.5, elapsed
    assert empty == ()
    assert 0.9 <= empty_elapsed < 2.0, empty_elapsed
    assert api.requests("getUpdates")[0].params["timeout"] == 2


# --------------------------------------------------------------------------- errors


def test_fail_next_429_raises_retry_after(api: FakeBotAPI) -> None:
    api.fail_next("sendMessage", error_code=429, retry_after=7)

    async def body(bot: telegram.Bot) -> tuple[RetryAfter, telegram.Message]:
        with pytest.raises(RetryAfter) as info:
            await bot.send_message(3, "flood")
        return info.value, await bot.send_message(3, "fine now")

    exc, message = with_bot(api, body)
    assert retry_seconds(exc) == 7
    assert message.text == "fine now"
    first, second = api.requests("sendMessage")
    assert (first.error_code, first.description) == (429, "Too Many Requests: retry after 7")
    assert first.params["text"] == "flood"
    assert second.ok
    assert api.sent_texts() == ["fine now"]


def test_fail_next_respects_chat_id_and_times(api: FakeBotAPI) -> None:
    api.fail_next("sendMessage", error_code=400, chat_id=2, times=2)

    async def body(bot: telegram.Bot) -> list[str]:
        outcome = []
        for chat in (1, 2, 2, 2):
            try:
                await bot.send_message(chat, f"to {chat}")
                outcome.append("ok")
            except BadRequest as exc:
                outcome.append(exc.message)
        return outcome

    assert with_bot(api, body) == ["ok", "Chat not found", "Chat not found", "ok"]
    assert [c.error_code for c in api.requests("sendMessage")] == [None, 400, 400, None]


def test_block_chat_raises_forbidden_until_unblocked(api: FakeBotAPI) -> None:
    api.block_chat(77)

    async def body(bot: telegram.Bot) -> tuple[list[str], telegram.Message, telegram.Message]:
        messages = []
        for send in (
            lambda: bot.send_message(77, "hi"),
            lambda: bot.send_chat_action(77, "typing"),
            lambda: bot.send_document(77, b"data", filename="a.txt"),
        ):
            with pytest.raises(Forbidden) as info:
                await send()
            messages.append(info.value.message)
        other = await bot.send_message(78, "other chat is fine")
        api.unblock_chat(77)
        return messages, other, await bot.send_message(77, "unblocked")

    messages, other, unblocked = with_bot(api, body)
    assert messages == ["Forbidden: bot was blocked by the user"] * 3
    assert other.chat.id == 78 and unblocked.chat.id == 77
    assert [c.error_code for c in api.calls if c.params.get("chat_id") == 77] == [
        403, 403, 403, None
    ]


@pytest.mark.parametrize(
    ("code", "exc_type", "message"),
    [
        (500, NetworkError, "Internal Server Error"),
        (502, NetworkError, "Bad Gateway"),
        (403, Forbidden, "Forbidden: bot was blocked by the user"),
    ],
)
def test_server_errors_map_to_ptb_exceptions(
    api: FakeBotAPI, code: int, exc_type: type[Exception], message: str
) -> None:
    api.fail_next("sendMessage", error_code=code)

    async def body(bot: telegram.Bot) -> Exception:
        with pytest.raises(exc_type) as info:
            await bot.send_message(1, "x")
        return info.value

    exc = with_bot(api, body)
    assert type(exc) is exc_type  # exactly NetworkError for 5xx: not TimedOut etc.
    assert not isinstance(exc, TimedOut)
    assert exc.message == message  # type: ignore[attr-defined]
    assert api.requests("sendMessage")[0].error_code == code


def test_unknown_method_404_and_wrong_token_401(api: FakeBotAPI) -> None:
    async def body(bot: telegram.Bot) -> str:
        # PTB turns the 404 into EndPointNotFound for do_api_request ...
        with pytest.raises(EndPointNotFound):
            await bot.do_api_request("noSuchMethod", api_kwargs={"chat_id": 1})
        # ... and into InvalidToken("Not Found") at the request level
        with pytest.raises(InvalidToken) as info:
            await bot.request.post(f"{bot.base_url}/otherMissingMethod")
        return info.value.message

    assert with_bot(api, body) == "Not Found"
    assert api.requests("noSuchMethod")[0].error_code == 404
    assert api.requests("otherMissingMethod")[0].description == "Not Found"

    async def wrong_token() -> str:
        bot = telegram.Bot("123456:WRONG", base_url=api.base_url)
        with pytest.raises(InvalidToken) as info:
            await bot.initialize()  # calls getMe
        return info.value.message

    assert "123456:WRONG" in asyncio.run(wrong_token())  # PTB rewords the 401 of getMe
    last = api.calls[-1]
    assert (last.method, last.error_code, last.description) == ("getMe", 401, "Unauthorized")


def test_enforce_rate_limits(api: FakeBotAPI) -> None:
    api.enforce_rate_limits(total_per_second=3, per_chat_per_second=1)

    async def body(bot: telegram.Bot) -> list[str]:
        outcome = []
        for chat in (1, 1, 2, 3, 4):
            try:
                await bot.send_message(chat, "x")
                outcome.append("ok")
            except RetryAfter as exc:
                assert retry_seconds(exc) == 1
                outcome.append("429")
        return outcome

    # chat 1 twice -> per-chat limit; chats 1,2,3 use up the total of 3 -> chat 4 limited
    assert with_bot(api, body) == ["ok", "429", "ok", "ok", "429"]
    assert api.rate_limited_count == 2
    api.enforce_rate_limits(enabled=False)
    assert with_bot(api, lambda bot: bot.send_message(1, "free")).text == "free"


# --------------------------------------------------------------------------- other methods


def test_edit_delete_commands_and_webhook(api: FakeBotAPI) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="a")]])

    async def body(bot: telegram.Bot) -> dict[str, Any]:
        out: dict[str, Any] = {}
        sent = await bot.send_message(5, "v1", reply_markup=keyboard)
        out["edited"] = await bot.edit_message_text("v2", chat_id=5, message_id=sent.message_id)
        with pytest.raises(BadRequest, match="not modified"):
            await bot.edit_message_text("v2", chat_id=5, message_id=sent.message_id)
        out["markup"] = await bot.edit_message_reply_markup(
            5, sent.message_id, reply_markup=keyboard
        )
        with pytest.raises(BadRequest, match="not found"):
            await bot.edit_message_text("x", chat_id=5, message_id=999)
        assert await bot.delete_message(5, sent.message_id) is True
        with pytest.raises(BadRequest, match="to delete not found"):
            await bot.delete_message(5, sent.message_id)
        assert await bot.delete_messages(5, [1, 2, 3]) is True

        await bot.set_my_commands([BotCommand("start", "Start"), BotCommand("help", "Help")])
        await bot.set_my_commands(
            [BotCommand("start", "Старт")],
            scope=BotCommandScopeAllPrivateChats(),
            language_code="ru",
        )
        out["default_cmds"] = await bot.get_my_commands()
        out["ru_cmds"] = await bot.get_my_commands(
            scope=BotCommandScopeAllPrivateChats(), language_code="ru"
        )
        await bot.delete_my_commands()
        out["after_delete"] = await bot.get_my_commands()

        await bot.set_webhook("https://example.org/hook", secret_token="s3cr3t")
        out["hook"] = await bot.get_webhook_info()
        with pytest.raises(telegram.error.Conflict):
            await bot.get_updates()
        await bot.delete_webhook()
        out["no_hook"] = await bot.get_webhook_info()
        for coro in (bot.send_chat_action(5, "typing"), bot.leave_chat(-100), bot.close(),
                     bot.log_out()):
            assert await coro is True
        return out

    out = with_bot(api, body)
    assert out["edited"].text == "v2" and out["edited"].edit_date is not None
    assert out["edited"].reply_markup is None  # editMessageText without markup drops it
    assert out["markup"].reply_markup == keyboard
    assert api.get_message(5, 1) is None  # deleted
    assert [c.command for c in out["default_cmds"]] == ["start", "help"]
    assert [(c.command, c.description) for c in out["ru_cmds"]] == [("start", "Старт")]
    assert out["after_delete"] == ()
    assert api.commands(BotCommandScopeAllPrivateChats(), "ru") == [
        {"command": "start", "description": "Старт"}
    ]
    assert api.commands() == []
    assert out["hook"].url == "https://example.org/hook"
    assert out["no_hook"].url == ""
    assert api.requests("setWebhook")[0].params["secret_token"] == "s3cr3t"
    assert {c.method for c in api.calls} >= {
        "editMessageText", "editMessageReplyMarkup", "deleteMessage", "deleteMessages",
        "setMyCommands", "getMyCommands", "deleteMyCommands", "sendChatAction", "leaveChat",
        "close", "logOut", "getWebhookInfo",
    }


def test_multipart_upload_and_file_download(api: FakeBotAPI) -> None:
    async def body(bot: telegram.Bot) -> tuple[telegram.Message, bytes, bytes]:
        message = await bot.send_document(8, b"hello file", filename="notes.txt", caption="c")
        tg_file = await bot.get_file(message.document.file_id)
        downloaded = bytes(await tg_file.download_as_bytearray())
        info = api.add_file(b"\x00\x01binary", file_path="photos/p.jpg")
        other = bytes(await (await bot.get_file(info["file_id"])).download_as_bytearray())
        return message, downloaded, other

    message, downloaded, other = with_bot(api, body)
    assert message.document.file_name == "notes.txt" and message.caption == "c"
    call = api.requests("sendDocument")[0]
    assert call.files["document"].data == b"hello file"
    assert call.files["document"].filename == "notes.txt"
    assert call.params == {"chat_id": 8, "caption": "c"}
    assert downloaded == b"hello file"
    assert other == b"\x00\x01binary"


def test_wait_for_timeout_lists_recorded_methods(api: FakeBotAPI) -> None:
    with_bot(api, lambda bot: bot.send_message(1, "only this"))
    assert api.wait_for("sendMessage", timeout=0.1).text == "only this"
    assert api.wait_for(lambda c: c.text == "only this").chat_id == 1
    with pytest.raises(AssertionError, match=r"getMe.*sendMessage"):
        api.wait_for(lambda c: c.method == "editMessageText", timeout=0.2)
    with pytest.raises(AssertionError):
        api.wait_for("sendMessage", timeout=0.1, start=len(api.calls))
    api.clear_calls()
    assert api.calls == []


def test_sustains_hundreds_of_send_messages_per_second(api: FakeBotAPI) -> None:
    async def body(bot: telegram.Bot) -> float:
        t0 = time.monotonic()
        for i in range(150):
            await bot.send_message(1000 + i % 10, f"seq {i}")
        await asyncio.gather(*(bot.send_message(2000 + i % 20, f"par {i}") for i in range(150)))
        return time.monotonic() - t0

    elapsed = with_bot(api, body)
    sends = api.requests("sendMessage")
    assert len(sends) == 300 and all(c.ok for c in sends)
    assert len(set(api.sent_texts())) == 300
    assert elapsed < 10, f"300 sendMessage took {elapsed:.2f}s"
    # message ids are per chat, without gaps or duplicates
    assert sorted(c.result["message_id"] for c in sends if c.chat_id == 1000) == list(
        range(1, 16)
    )


# --------------------------------------------------------------------------- real Application


def build_app(api: FakeBotAPI) -> Application:
    return (
        Application.builder()
        .token(api.token)
        .base_url(api.base_url)
        .base_file_url(api.base_file_url)
        .build()
    )


async def run_polling_app(app: Application, scenario: Callable[[], Awaitable[T]]) -> T:
    async with app:
        await app.updater.start_polling(poll_interval=0, timeout=1)
        await app.start()
        try:
            return await scenario()
        finally:
            await app.updater.stop()
            await app.stop()


def test_real_application_answers_start_command(api: FakeBotAPI) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user
        await update.message.reply_text(f"Welcome, {user.first_name} ({user.language_code})!")

    app = build_app(api)
    app.add_handler(CommandHandler("start", start))

    async def scenario() -> Call:
        api.push_message(4242, "/start", first_name="Ada", language_code="fr")
        return await api.await_call(lambda c: c.method == "sendMessage", timeout=5)

    reply = asyncio.run(run_polling_app(app, scenario))
    assert reply.ok
    assert reply.params["chat_id"] == 4242
    assert reply.params["text"] == "Welcome, Ada (fr)!"
    assert api.sent_texts(4242) == ["Welcome, Ada (fr)!"]
    methods = [c.method for c in api.calls]
    assert methods[0] == "getMe" and "deleteWebhook" in methods
    assert api.pending_updates() == 0


def test_real_application_callback_query_edits_message(api: FakeBotAPI) -> None:
    async def menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Pick me", callback_data="pick")]])
        await update.message.reply_text("Menu", reply_markup=keyboard)

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        await query.answer("Picked!")
        await query.edit_message_text(f"You chose {query.data}")

    app = build_app(api)
    app.add_handler(CommandHandler("menu", menu))
    app.add_handler(CallbackQueryHandler(on_button))

    async def scenario() -> Call:
        api.push_message(5, "/menu")
        sent = await api.await_call("sendMessage", timeout=5)
        api.push_callback(5, "pick", message_id=sent.result["message_id"])
        return await api.await_call("editMessageText", timeout=5)

    edit = asyncio.run(run_polling_app(app, scenario))
    assert edit.ok and edit.params["text"] == "You chose pick"
    answer = api.requests("answerCallbackQuery")[0]
    assert answer.ok and answer.params["text"] == "Picked!"
    stored = api.get_message(5, edit.params["message_id"])
    assert stored is not None and stored["text"] == "You chose pick"
    assert "reply_markup" not in stored
