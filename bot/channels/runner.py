"""`python main.py run`: every channel whose settings are present, in one event loop.

Telegram (TELEGRAM_BOT_TOKEN) by long polling or its webhook; WhatsApp (its four settings) on the
bot's HTTP server at BOT_HTTP_HOST:BOT_HTTP_PORT, /whatsapp/webhook. With Telegram alone the bot
runs exactly as before (python-telegram-bot's own run_polling/run_webhook).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal

log = logging.getLogger(__name__)

HOW_TO_CONFIGURE = """No channel is configured, so there is nothing to run.

Telegram:  create a bot with @BotFather in Telegram (send it /newbot), then
             TELEGRAM_BOT_TOKEN=<the token> python main.py run

WhatsApp:  in a Meta app with the WhatsApp product (README: WhatsApp set-up), set all four of
             WHATSAPP_ACCESS_TOKEN     a system user's permanent token
             WHATSAPP_PHONE_NUMBER_ID  the number's id (not the number) from the app's API set-up
             WHATSAPP_APP_SECRET       App settings > Basic > App secret (signs the webhook posts)
             WHATSAPP_VERIFY_TOKEN     any secret you choose; type the same one in Meta's webhook form
           then run python main.py run: the webhook listens on BOT_HTTP_HOST:BOT_HTTP_PORT
           (default 127.0.0.1:8080) at /whatsapp/webhook, behind your HTTPS proxy.

Web chat:  BOT_WEB_CHAT=on serves the chat page at / on the same server (README: Web chat).
SMS:       TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER: webhook /sms/twilio.

All can run at once. To try the bot with none, run: python main.py chat (no token needed)."""


async def _retention(engine, settings, stop: asyncio.Event) -> None:
    """Every 6 hours (first after 30 s), as the Telegram application's job does."""
    delay = 30.0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
            return
        except asyncio.TimeoutError:
            pass
        counts = engine.db.purge_expired(dt.timedelta(days=settings.inactive_days),
                                         dt.timedelta(days=settings.unanswered_days),
                                         dt.timedelta(days=settings.delivery_days))
        log.info("retention: %(message_ids)d message ids, %(unanswered_questions)d unanswered questions, "
                 "%(delivery_records)d delivery records and %(inactive_people)d inactive people deleted",
                 counts)
        delay = 6 * 3600.0


async def run_channels(settings, engine, *, webhook_url: str | None = None, listen: str = "0.0.0.0",
                       port: int = 8443, secret: str | None = None) -> None:
    """Run WhatsApp (and Telegram, when configured) until SIGTERM or SIGINT."""
    from aiohttp import web

    from ..features.broadcasts import sms as _sms_lane  # noqa: F401 - registers the SMS lane
    from ..features.broadcasts import whatsapp as _whatsapp_lane  # noqa: F401 - registers the WhatsApp lane
    from ..reloader import watch_knowledge
    from .whatsapp import WhatsAppChannel, build_webhook_app

    engine.settings = settings   # e.g. WhatsApp's templates, for the /broadcast preview
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    served = []   # (channel, what the log says it serves)
    if settings.whatsapp_configured:
        served.append((WhatsAppChannel(settings, engine), "the WhatsApp webhook at /whatsapp/webhook"))
    if settings.web_chat:
        from .web import WebChannel

        served.append((WebChannel(settings, engine), "the web chat at /"))
    if settings.sms_configured:
        from .sms import SmsChannel

        served.append((SmsChannel(settings, engine), "the SMS webhook at /sms/twilio"))
    runner = web.AppRunner(build_webhook_app([channel for channel, _what in served]), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    for _channel, what in served:
        log.info("HTTP server on %s:%d: %s", settings.http_host, settings.http_port, what)
    application = None
    tasks = []
    try:
        if settings.telegram_configured:
            from .telegram import build_application

            application = build_application(settings, engine)
            await application.initialize()
            await application.post_init(application)
            if webhook_url:
                await application.updater.start_webhook(listen=listen, port=port, url_path="telegram",
                                                        webhook_url=webhook_url.rstrip("/") + "/telegram",
                                                        secret_token=secret)
            else:
                await application.updater.start_polling()
            await application.start()
            log.info("Telegram is running too")
        else:   # the Telegram application's jobs, for a bot on WhatsApp alone
            if engine.knowledge_dir is not None:
                tasks.append(asyncio.create_task(watch_knowledge(engine, engine.knowledge_dir, stop)))
            tasks.append(asyncio.create_task(_retention(engine, settings, stop)))
            from ..features.broadcasts.delivery import BroadcastService, SendBudget

            service = BroadcastService(settings, engine.db, SendBudget(settings.broadcast_rate))
            tasks.append(asyncio.create_task(service.run(stop=stop)))   # announcements on WhatsApp
        await stop.wait()
        log.info("stopping")
    finally:
        if application is not None:
            if application.updater.running:
                await application.updater.stop()
            if application.running:
                await application.stop()
            await application.post_stop(application)
            await application.shutdown()
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
