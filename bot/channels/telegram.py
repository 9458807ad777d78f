"""The Telegram adapter: python-telegram-bot callbacks that translate updates to the engine and
the engine's replies back to Telegram. No decisions are made here."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from telegram import (BotCommand, BotCommandScopeDefault, InlineKeyboardButton,
                      InlineKeyboardMarkup, LinkPreviewOptions, Message, Update)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError, TimedOut
from telegram.ext import (Application, CallbackQueryHandler, ChatMemberHandler, ContextTypes, Defaults,
                          MessageHandler, filters)

from ..config import Settings
from ..delivery import SharedRateLimiter, attach_broadcasts
from ..engine import COMMANDS, Engine, Incoming, Reply, Response
from ..i18n import translate
from ..languages import DEFAULT_LANGUAGE, LANGUAGES, from_telegram_code
from ..telegram_html import split_message

log = logging.getLogger(__name__)


def _markup(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
                                 for row in reply.buttons])


SEND_ATTEMPTS = 3


async def _send_with_retry(make_call, what: str):
    """Retry what can succeed later (network errors, timeouts; 429s are handled by the rate
    limiter); give up on what cannot (blocked by the person, bad request) and log it, without
    the message or who it was for."""
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            return await make_call()
        except (TimedOut, NetworkError) as exc:
            if isinstance(exc, BadRequest) or attempt == SEND_ATTEMPTS:
                log.warning("dropped %s after %d attempt(s): %s", what, attempt, type(exc).__name__)
                return None
            await asyncio.sleep(0.5 * 2 ** (attempt - 1))
        except Forbidden:
            log.info("dropped %s: the person blocked the bot", what)
            return None
        except TelegramError as exc:
            log.warning("dropped %s: %s", what, type(exc).__name__)
            return None
    return None


async def send_response(context: ContextTypes.DEFAULT_TYPE, chat_id: int, response: Response,
                        pressed: Message | None = None) -> None:
    """Send the engine's replies; a navigation reply edits the message whose button was pressed."""
    engine = context.application.bot_data.get("engine")
    if response.delete_messages:
        await _delete_messages(context, chat_id, response.delete_messages)
    for reply in response.replies:
        markup = _markup(reply)
        parts = split_message(reply.text)
        if reply.replace and pressed is not None and len(parts) == 1:
            try:
                await pressed.edit_text(parts[0], reply_markup=markup)
                continue
            except BadRequest as exc:  # too old to edit, or unchanged: send it as a new message
                log.info("could not edit a message (%s); sending a new one", type(exc).__name__)
            except TelegramError as exc:
                log.info("could not edit a message (%s); sending a new one", type(exc).__name__)
        for i, part in enumerate(parts):
            sent = await _send_with_retry(
                lambda part=part, i=i: context.bot.send_message(
                    chat_id, part, reply_markup=markup if i == len(parts) - 1 else None),
                "a reply")
            if sent is not None and engine is not None and not response.forgotten:
                engine.db.remember_message(chat_id, sent.message_id)


async def _delete_messages(context: ContextTypes.DEFAULT_TYPE, chat_id: int, ids: list[int]) -> None:
    """Delete the bot's and the person's recent messages (Telegram takes 100 at a time)."""
    for start in range(0, len(ids), 100):
        await _send_with_retry(lambda chunk=ids[start:start + 100]:
                               context.bot.delete_messages(chat_id, chunk), "a message deletion")


def _engine(context: ContextTypes.DEFAULT_TYPE) -> Engine:
    return context.application.bot_data["engine"]


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text message or command in a private chat: ask the engine, send its replies."""
    message = update.effective_message
    user = update.effective_user
    engine = _engine(context)
    engine.db.remember_message(message.chat_id, message.message_id)
    response = engine.handle(Incoming(user.id, text=message.text, language_hint=user.language_code))
    await send_response(context, message.chat_id, response)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An inline button press: acknowledge it at once, then let the engine handle its data."""
    query = update.callback_query
    await query.answer()
    user = update.effective_user
    response = _engine(context).handle(Incoming(user.id, button=query.data or "",
                                                language_hint=user.language_code))
    chat_id = query.message.chat.id if query.message else user.id
    await send_response(context, chat_id, response, pressed=query.message)


async def on_non_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, photos, voice notes...: the engine treats them as a message with no words."""
    user = update.effective_user
    engine = _engine(context)
    engine.db.remember_message(update.effective_chat.id, update.effective_message.message_id)
    response = engine.handle(Incoming(user.id, text="", language_hint=user.language_code))
    await send_response(context, update.effective_chat.id, response)


async def on_group(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In a group the bot says why it only talks in private, then leaves: what people ask it
    must not be seen by others, and it keeps no group data."""
    chat = update.effective_chat
    user = update.effective_user
    lang = from_telegram_code(user.language_code if user else None) or DEFAULT_LANGUAGE
    notice = _engine(context).group_notice(lang, context.bot.username)
    await _send_with_retry(lambda: context.bot.send_message(chat.id, notice.text), "a group notice")
    await _send_with_retry(lambda: context.bot.leave_chat(chat.id), "leaving a group")
    log.info("left a group chat")


async def on_added_to_group(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Someone added the bot to a group: explain and leave at once."""
    change = update.my_chat_member
    if change.chat.type in ("group", "supergroup") and change.new_chat_member.status in ("member",
                                                                                          "administrator"):
        await on_group(update, context)


async def purge_expired(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Scheduled retention: message ids past 48 hours, old unanswered questions and delivery
    records, people inactive too long."""
    settings: Settings = context.application.bot_data["settings"]
    counts = _engine(context).db.purge_expired(dt.timedelta(days=settings.inactive_days),
                                               dt.timedelta(days=settings.unanswered_days),
                                               dt.timedelta(days=settings.delivery_days))
    log.info("retention: %(message_ids)d message ids, %(unanswered_questions)d unanswered questions, "
             "%(delivery_records)d delivery records and %(inactive_people)d inactive people deleted",
             counts)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log what failed, without the message or who sent it; the bot keeps running."""
    error = context.error
    log.error("error while handling an update: %s: %s", type(error).__name__,
              error if isinstance(error, TelegramError) else "see traceback", exc_info=error)


async def start_watching(application: Application) -> None:
    """Reload the knowledge base when staff save a file (runs until the bot stops)."""
    from ..reloader import watch_knowledge

    engine: Engine = application.bot_data["engine"]
    if engine.knowledge_dir is not None:
        stop = asyncio.Event()
        application.bot_data["stop_watching"] = stop
        application.create_task(watch_knowledge(engine, engine.knowledge_dir, stop), name="knowledge-watch")


async def stop_watching(application: Application) -> None:
    stop = application.bot_data.get("stop_watching")
    if stop is not None:
        stop.set()


async def on_startup(application: Application) -> None:
    await register_commands(application)
    await start_watching(application)


async def register_commands(application: Application) -> None:
    """Register the command menu with Telegram in each language (English as the default)."""
    for lang in (None, *LANGUAGES):
        commands = [BotCommand(name, translate(lang or "en", desc)) for name, desc in COMMANDS]
        await application.bot.set_my_commands(commands, scope=BotCommandScopeDefault(),
                                              language_code=lang)


def build_application(settings: Settings, engine: Engine) -> Application:
    """Wire the handlers; the same Application serves long polling, webhooks and the tests."""
    builder = (Application.builder()
               .token(settings.require_token())
               .defaults(Defaults(parse_mode=ParseMode.HTML,
                                  link_preview_options=LinkPreviewOptions(is_disabled=True)))
               .rate_limiter(SharedRateLimiter(settings.broadcast_rate, max_retries=3))
               .post_init(on_startup)
               .post_stop(stop_watching))
    if settings.api_base_url:
        base = settings.api_base_url
        builder = builder.base_url(base).base_file_url(base.rstrip("/").rsplit("/", 1)[0] + "/file/bot")
    application = builder.build()
    application.bot_data["engine"] = engine
    application.bot_data["settings"] = settings
    private = filters.ChatType.PRIVATE
    # Groups: explain and leave. Edited messages and channel posts are ignored on purpose: an
    # edit would answer twice, and the bot has no business in channels.
    application.add_handler(MessageHandler(filters.ChatType.GROUPS & ~filters.StatusUpdate.LEFT_CHAT_MEMBER
                                           & ~filters.UpdateType.EDITED, on_group))
    application.add_handler(ChatMemberHandler(on_added_to_group, ChatMemberHandler.MY_CHAT_MEMBER))
    application.add_handler(MessageHandler(private & filters.TEXT & ~filters.UpdateType.EDITED, on_text))
    application.add_handler(CallbackQueryHandler(on_button))
    application.add_handler(MessageHandler(private & ~filters.TEXT & ~filters.UpdateType.EDITED
                                           & ~filters.StatusUpdate.ALL, on_non_text))
    application.add_error_handler(on_error)
    if application.job_queue is not None:
        application.job_queue.run_repeating(purge_expired, interval=dt.timedelta(hours=6),
                                             first=dt.timedelta(seconds=30), name="retention")
    attach_broadcasts(application, settings, engine.db)   # sends, schedules and resumes broadcasts
    return application
