"""The Telegram adapter: python-telegram-bot callbacks that translate updates to the engine and
the engine's replies back to Telegram. No decisions are made here."""

from __future__ import annotations

import logging

from telegram import (BotCommand, BotCommandScopeDefault, InlineKeyboardButton,
                      InlineKeyboardMarkup, LinkPreviewOptions, Message, Update)
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import (AIORateLimiter, Application, CallbackQueryHandler, ContextTypes, Defaults,
                          MessageHandler, filters)

from .config import Settings
from .engine import COMMANDS, Engine, Incoming, Reply, Response
from .i18n import translate
from .languages import LANGUAGES
from .telegram_html import split_message

log = logging.getLogger(__name__)


def _markup(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
                                 for row in reply.buttons])


async def send_response(context: ContextTypes.DEFAULT_TYPE, chat_id: int, response: Response,
                        pressed: Message | None = None) -> None:
    """Send the engine's replies; a navigation reply edits the message whose button was pressed."""
    for reply in response.replies:
        markup = _markup(reply)
        parts = split_message(reply.text)
        if reply.replace and pressed is not None and len(parts) == 1:
            try:
                await pressed.edit_text(parts[0], reply_markup=markup)
                continue
            except BadRequest as exc:  # too old to edit, or unchanged: send it as a new message
                log.info("could not edit a message (%s); sending a new one", type(exc).__name__)
        for i, part in enumerate(parts):
            await context.bot.send_message(chat_id, part,
                                           reply_markup=markup if i == len(parts) - 1 else None)


def _engine(context: ContextTypes.DEFAULT_TYPE) -> Engine:
    return context.application.bot_data["engine"]


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text message or command in a private chat: ask the engine, send its replies."""
    message = update.effective_message
    user = update.effective_user
    response = _engine(context).handle(Incoming(user.id, text=message.text,
                                                language_hint=user.language_code))
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
    response = _engine(context).handle(Incoming(user.id, text="", language_hint=user.language_code))
    await send_response(context, update.effective_chat.id, response)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log what failed, without the message or who sent it; the bot keeps running."""
    error = context.error
    log.error("error while handling an update: %s: %s", type(error).__name__,
              error if isinstance(error, TelegramError) else "see traceback", exc_info=error)


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
               .rate_limiter(AIORateLimiter(max_retries=3))
               .post_init(register_commands))
    if settings.api_base_url:
        base = settings.api_base_url
        builder = builder.base_url(base).base_file_url(base.rstrip("/").rsplit("/", 1)[0] + "/file/bot")
    application = builder.build()
    application.bot_data["engine"] = engine
    private = filters.ChatType.PRIVATE
    application.add_handler(MessageHandler(private & filters.TEXT & ~filters.UpdateType.EDITED, on_text))
    application.add_handler(CallbackQueryHandler(on_button))
    application.add_handler(MessageHandler(private & ~filters.TEXT & ~filters.UpdateType.EDITED
                                           & ~filters.StatusUpdate.ALL, on_non_text))
    application.add_error_handler(on_error)
    return application
