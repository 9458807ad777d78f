"""Settings from the environment, with embedded defaults that work on a fresh machine."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KNOWLEDGE_DIR = ROOT / "knowledge"
DEFAULT_DATABASE = ROOT / "data" / "bot.sqlite3"
GRAPH_API = "https://graph.facebook.com/v21.0"   # Meta's Graph API, with its version
WHATSAPP_SETTINGS = ("WHATSAPP_ACCESS_TOKEN", "WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_APP_SECRET",
                     "WHATSAPP_VERIFY_TOKEN")
TWILIO_API = "https://api.twilio.com"             # Twilio's REST API (Messages: /2010-04-01/...)
TWILIO_SETTINGS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER")
WEB_EXIT_URL = "https://www.google.com/"          # where the web chat's quick exit goes
_YES, _NO = {"1", "on", "yes", "true"}, {"0", "off", "no", "false"}


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says how to fix it."""


@dataclass(frozen=True)
class Settings:
    token: str | None = field(default=None, repr=False)  # never printed
    api_base_url: str | None = None
    database: Path = DEFAULT_DATABASE
    model_cache: Path | None = None   # trained matcher models; default: model-cache/ beside the database
    knowledge_dir: Path = DEFAULT_KNOWLEDGE_DIR
    admin_ids: frozenset[int] = frozenset()
    inactive_days: int = 365   # people who have not written for this long are deleted
    unanswered_days: int = 30  # recorded unanswered questions are kept this long
    delivery_days: int = 30    # per-recipient broadcast delivery records are kept this long
    broadcast_rate: float = 30.0  # messages per second in total (Telegram's limit; more needs paid broadcasts)
    # WhatsApp Cloud API (issue 12): all four of the first settings, or none
    whatsapp_access_token: str | None = field(default=None, repr=False)
    whatsapp_phone_number_id: str | None = None
    whatsapp_app_secret: str | None = field(default=None, repr=False)
    whatsapp_verify_token: str | None = field(default=None, repr=False)
    whatsapp_api_base_url: str = GRAPH_API
    whatsapp_templates: str | None = None   # announcement templates per language (see whatsapp_template_map)
    whatsapp_broadcast_rate: float = 80.0   # the number's throughput, messages per second
    http_host: str = "127.0.0.1"   # the bot's one HTTP server (the WhatsApp webhook)
    http_port: int = 8080
    public_url: str | None = None  # the address people and providers reach the server at (behind a proxy)
    # the web chat (issue 13): on the same server, at /
    web_chat: bool = False
    web_exit_url: str = WEB_EXIT_URL
    web_embed_origins: tuple[str, ...] = ()   # sites allowed to show the chat in an <iframe>
    web_trust_proxy: bool = False             # rate-limit by X-Forwarded-For (set only behind a proxy)
    # SMS through Twilio (issue 13): the first three settings, or none
    twilio_account_sid: str | None = field(default=None, repr=False)
    twilio_auth_token: str | None = field(default=None, repr=False)
    twilio_from_number: str | None = field(default=None, repr=False)
    twilio_api_base_url: str = TWILIO_API
    twilio_keywords: bool = True   # Twilio answers STOP/START/HELP itself (its default opt-out handling)
    sms_rate: float = 1.0          # SMS messages per second (a long code: 1)

    @property
    def telegram_configured(self) -> bool:
        return bool(self.token)

    @property
    def whatsapp_configured(self) -> bool:
        return bool(self.whatsapp_access_token and self.whatsapp_phone_number_id
                    and self.whatsapp_app_secret and self.whatsapp_verify_token)

    @property
    def sms_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.twilio_from_number)

    @property
    def http_configured(self) -> bool:
        """Something is served by the bot's HTTP server (WhatsApp, the web chat, SMS)."""
        return self.whatsapp_configured or self.web_chat or self.sms_configured

    def secrets(self) -> list[str]:
        """Values that must never appear in a log line."""
        return [s for s in (self.token, self.whatsapp_access_token, self.whatsapp_app_secret,
                            self.whatsapp_verify_token, self.twilio_auth_token) if s]

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        ids = set()
        for part in (env.get("BOT_ADMIN_IDS") or "").replace(" ", "").split(","):
            if not part:
                continue
            if not part.lstrip("-").isdigit():
                raise ConfigError(f"BOT_ADMIN_IDS must be Telegram user ids separated by commas; "
                                  f"{part!r} is not a number")
            ids.add(int(part))
        whatsapp = {name: (env.get(name) or "").strip() or None for name in WHATSAPP_SETTINGS}
        missing = [name for name, value in whatsapp.items() if value is None]
        if 0 < len(missing) < len(WHATSAPP_SETTINGS):
            raise ConfigError("WhatsApp needs all of " + ", ".join(WHATSAPP_SETTINGS) + "; missing: "
                              + ", ".join(missing) + " (README: WhatsApp set-up)")
        twilio = {name: (env.get(name) or "").strip() or None for name in TWILIO_SETTINGS}
        missing = [name for name, value in twilio.items() if value is None]
        if 0 < len(missing) < len(TWILIO_SETTINGS):
            raise ConfigError("SMS needs all of " + ", ".join(TWILIO_SETTINGS) + "; missing: "
                              + ", ".join(missing) + " (README: SMS set-up)")
        public_url = (env.get("BOT_PUBLIC_URL") or "").strip().rstrip("/") or None
        if public_url and not public_url.startswith(("https://", "http://")):
            raise ConfigError(f"BOT_PUBLIC_URL must start with https:// (the address Twilio and "
                              f"visitors reach), not {public_url!r}")
        port = (env.get("BOT_HTTP_PORT") or "").strip()
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ConfigError(f"BOT_HTTP_PORT must be a port number (1-65535), not {port!r}")
        return cls(
            whatsapp_access_token=whatsapp["WHATSAPP_ACCESS_TOKEN"],
            whatsapp_phone_number_id=whatsapp["WHATSAPP_PHONE_NUMBER_ID"],
            whatsapp_app_secret=whatsapp["WHATSAPP_APP_SECRET"],
            whatsapp_verify_token=whatsapp["WHATSAPP_VERIFY_TOKEN"],
            whatsapp_api_base_url=((env.get("WHATSAPP_API_BASE_URL") or "").strip() or GRAPH_API).rstrip("/"),
            whatsapp_templates=_templates(env.get("WHATSAPP_TEMPLATES")),
            whatsapp_broadcast_rate=_rate(env, "WHATSAPP_BROADCAST_RATE", 80.0),
            http_host=(env.get("BOT_HTTP_HOST") or "").strip() or "127.0.0.1",
            http_port=int(port) if port else 8080,
            public_url=public_url,
            web_chat=_flag(env, "BOT_WEB_CHAT", False),
            web_exit_url=(env.get("BOT_WEB_EXIT_URL") or "").strip() or WEB_EXIT_URL,
            web_embed_origins=tuple((env.get("BOT_WEB_EMBED_ORIGINS") or "").replace(",", " ").split()),
            web_trust_proxy=_flag(env, "BOT_WEB_TRUST_PROXY", False),
            twilio_account_sid=twilio["TWILIO_ACCOUNT_SID"],
            twilio_auth_token=twilio["TWILIO_AUTH_TOKEN"],
            twilio_from_number=twilio["TWILIO_FROM_NUMBER"],
            twilio_api_base_url=((env.get("TWILIO_API_BASE_URL") or "").strip() or TWILIO_API).rstrip("/"),
            twilio_keywords=_flag(env, "TWILIO_HANDLES_KEYWORDS", True),
            sms_rate=_rate(env, "TWILIO_RATE", 1.0),
            token=(env.get("TELEGRAM_BOT_TOKEN") or "").strip() or None,
            api_base_url=(env.get("TELEGRAM_API_BASE_URL") or "").strip() or None,
            database=Path(env.get("BOT_DATABASE") or DEFAULT_DATABASE),
            model_cache=Path(env["BOT_MODEL_CACHE"]) if (env.get("BOT_MODEL_CACHE") or "").strip() else None,
            knowledge_dir=Path(env.get("BOT_KNOWLEDGE_DIR") or DEFAULT_KNOWLEDGE_DIR),
            admin_ids=frozenset(ids),
            inactive_days=_positive_int(env, "BOT_INACTIVE_DAYS", 365),
            unanswered_days=_positive_int(env, "BOT_UNANSWERED_DAYS", 30),
            delivery_days=_positive_int(env, "BOT_DELIVERY_DAYS", 30),
            broadcast_rate=_rate(env, "BOT_BROADCAST_RATE", 30.0),
        )

    def whatsapp_template_map(self) -> dict[str, tuple[str, str]]:
        """Our language -> (template name, WhatsApp's language code), from WHATSAPP_TEMPLATES."""
        found = {}
        for part in (self.whatsapp_templates or "").split(","):
            if part.strip():
                lang, _sep, rest = part.strip().partition("=")
                name, _sep, code = rest.partition(":")
                found[lang.strip()] = (name.strip(), code.strip() or lang.strip())
        return found

    def require_token(self) -> str:
        if not self.token:
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN is not set. Create a bot with @BotFather in Telegram (send it "
                "/newbot), then run: TELEGRAM_BOT_TOKEN=<the token> python main.py run\n"
                "To try the bot without Telegram, run: python main.py chat (no token needed).")
        return self.token


def _templates(raw: str | None) -> str | None:
    """WHATSAPP_TEMPLATES: comma-separated language=template_name[:whatsapp_language_code], e.g.
    "en=kyr_announcement:en_US,pt=kyr_aviso:pt_BR,es=kyr_aviso_es"; each template is approved in
    Meta's WhatsApp Manager with one body parameter ({{1}}, the announcement)."""
    from .languages import LANGUAGES

    raw = (raw or "").strip()
    for part in filter(None, (p.strip() for p in raw.split(","))):
        lang, sep, rest = part.partition("=")
        name = rest.partition(":")[0].strip()
        if not sep or lang.strip() not in LANGUAGES or not re.fullmatch(r"[a-z0-9_]{1,512}", name):
            raise ConfigError(f"WHATSAPP_TEMPLATES must be language=template_name[:code] separated by "
                              f"commas (languages: {', '.join(LANGUAGES)}; template names are lowercase "
                              f"letters, digits and _), e.g. en=kyr_announcement:en_US; not {part!r}")
    return raw or None


def _positive_int(env, name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{name} must be a whole number of days (1 or more), not {raw!r}")
    return int(raw)


def _flag(env, name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in _YES | _NO:
        raise ConfigError(f"{name} is on or off (1/0, yes/no), not {raw!r}")
    return raw in _YES


def _rate(env, name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        rate = float(raw)
    except ValueError:
        rate = 0.0
    if not 0 < rate <= 1000:
        raise ConfigError(f"{name} is messages per second in total, above 0 and at most 1000 (Telegram "
                          f"allows 30 without paid broadcasts), not {raw!r}")
    return rate
