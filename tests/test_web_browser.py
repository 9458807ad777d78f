"""The web chat in a real browser: headless Chromium from Debian's packages (/usr/bin/chromium and
/usr/bin/chromedriver, installed by .ci/run), driven by Selenium, against `python main.py run` with
BOT_WEB_CHAT=on. Nothing downloads a browser; Chromium starts with the flags that keep an offline
machine quiet.

Screenshots (desktop, a 360-pixel phone, dark mode) are written to the test's folder, and to
docs/ when WEB_SCREENSHOTS=docs."""

from __future__ import annotations

import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from auxil.http_bot import ROOT, HttpBot, knowledge_copy
from auxil.kb_fixtures import entry_data

from bot.i18n import translate

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
    if os.environ.get("CI"):
        raise RuntimeError("CI must install Debian's chromium and chromium-driver (.ci/run does)")
    pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install chromium "
                "chromium-driver)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SCRIPT_TITLE = "<script>window.pwned=1</script>"
SCRIPT_ANSWER = "<b>Shown as text:</b> &lt;script&gt;window.pwned=2&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;"


class Neutral(BaseHTTPRequestHandler):
    """The 'neutral site' quick exit goes to (the machine has no network)."""

    def do_GET(self):
        body = b"<!doctype html><title>Weather</title><p>Sunny</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def neutral():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Neutral)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/weather"
    server.shutdown()


@pytest.fixture(scope="module")
def bot(tmp_path_factory, neutral):
    tmp = tmp_path_factory.mktemp("web")
    test_entry = entry_data("script-test", "zorblax", category="about")
    for lang in ("en", "pt", "es", "ht"):
        test_entry[lang]["title"] = SCRIPT_TITLE
        test_entry[lang]["answer"] = SCRIPT_ANSWER
    kb = knowledge_copy(tmp, test_entry)
    running = HttpBot(tmp, {"BOT_WEB_CHAT": "on", "BOT_KNOWLEDGE_DIR": str(kb), "BOT_WEB_EXIT_URL": neutral})
    yield running
    assert running.stop() == 0, running.log()
    assert not running.failures(), running.log()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--lang=en-US", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def replies(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#log li.bot")


def wait_replies(driver, more_than: int, timeout: float = 30):
    try:
        WebDriverWait(driver, timeout).until(lambda d: len(replies(d)) > more_than)
    except Exception:
        notice = driver.find_element(By.ID, "notice")
        raise AssertionError(f"no reply; the page says: {notice.text!r}; last: "
                             f"{[r.text[:200] for r in replies(driver)[-2:]]}") from None
    return replies(driver)


def ask(driver, text: str):
    before = len(replies(driver))
    box = driver.find_element(By.ID, "q")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)
    found = wait_replies(driver, before)
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "q").get_attribute("value") == "")
    return found[before:]


def press(driver, label_part: str, within=None):
    scope = within or driver
    button = next(b for b in scope.find_elements(By.CSS_SELECTOR, ".choices button")
                  if label_part in b.text)
    before = len(replies(driver))
    button.click()
    WebDriverWait(driver, 30).until(lambda d: len(replies(d)) > before or not _attached(button))
    return replies(driver)


def _attached(element) -> bool:
    try:
        element.is_enabled()
        return True
    except Exception:   # noqa: BLE001 - stale: the reply was replaced
        return False


def shoot(driver, tmp: Path, name: str) -> Path:
    driver.execute_script("var m = document.querySelector('main'); m.scrollTop = m.scrollHeight;")
    path = tmp / name
    driver.save_screenshot(str(path))
    if os.environ.get("WEB_SCREENSHOTS") == "docs":
        shutil.copy(path, ROOT / "docs" / name)
    return path


def csp_violations(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser")
            if "Content Security Policy" in e["message"] or "Refused" in e["message"]]


def title_of(entry: str, lang: str) -> str:
    from bot.knowledge import load_knowledge

    kb, _issues = load_knowledge(ROOT / "knowledge")
    return kb.entries[entry].text(lang).title


def test_the_chat_in_chromium(bot, browser, neutral, tmp_path):
    driver = browser
    driver.get(neutral)                    # the page before the chat, for the history check
    driver.get(bot.base + "/")
    first = wait_replies(driver, 0)
    assert "LUCE" in first[0].text or "617-370-5023" in first[0].text   # welcome with the emergency line
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert driver.get_cookies() == []

    # a question in Portuguese is answered in Portuguese; the page stays in the browser's language
    answer = ask(driver, "o que faço se a imigração bater na minha porta")
    assert any(title_of("ice-at-home", "pt") in r.text for r in answer)
    assert driver.find_element(By.ID, "send").text == "Send"
    assert any(b.text.endswith("Sim") for b in answer[-1].find_elements(By.CSS_SELECTOR, ".choices button"))

    # and in Kreyòl
    answer = ask(driver, "kisa pou m fè si imigrasyon frape pòt lakay mwen")
    assert any(title_of("ice-at-home", "ht") in r.text for r in answer)

    # did you mean: suggestion buttons are real buttons; pressing one answers it
    suggested = ask(driver, "court")
    assert translate("en", "I am not sure I understood. Did you mean one of these?") in suggested[-1].text
    wanted = title_of("court-hearing", "en")
    after = press(driver, wanted, within=suggested[-1])
    assert wanted in after[-1].text
    assert driver.find_elements(By.CSS_SELECTOR, "#log li.me")[-1].text.endswith(wanted)

    # feedback: 👍 gets the thanks
    after = press(driver, "Yes", within=after[-1])
    assert translate("en", "Thank you! This helps us improve the answers.") in after[-1].text
    shoot(driver, tmp_path, "web-chat-desktop.png")

    # the language picker: the page switches to the language picked, its own words too
    driver.find_element(By.ID, "language").click()
    picker = wait_replies(driver, len(after))[-1]
    press(driver, "Español", within=picker)
    WebDriverWait(driver, 10).until(
        lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "es")
    assert driver.find_element(By.ID, "send").text == translate("es", "Send")
    assert driver.find_element(By.ID, "exit").text.endswith(translate("es", "Quick exit"))
    assert translate("es", "Done: I will answer in English. Ask your question, or choose a topic.") \
        in replies(driver)[-1].text

    # the topic menu and the emergency line, one tap away
    before = len(replies(driver))
    driver.find_element(By.ID, "emergency").click()
    emergency = wait_replies(driver, before)[-1]
    assert "617-370-5023" in emergency.text and "911" in emergency.text

    # an answer holding <script> shows as text, runs nothing, injects nothing
    answer = ask(driver, "tell me about zorblax")
    assert SCRIPT_TITLE in answer[-1].text
    assert "<script>window.pwned=2</script> <img src=x onerror=alert(1)>" in answer[-1].text
    assert driver.execute_script("return typeof window.pwned") == "undefined"
    assert driver.find_elements(By.CSS_SELECTOR, "#log script, #log img") == []
    assert "Shown as text:" in [b.text for b in answer[-1].find_elements(By.TAG_NAME, "b")]   # the subset renders

    # the conversation survives a reload of the tab (sessionStorage), with no cookie
    count = len(replies(driver))
    driver.refresh()
    WebDriverWait(driver, 10).until(lambda d: len(replies(d)) == count)
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "es"
    assert driver.get_cookies() == []

    # phone width and dark mode
    driver.set_window_size(360, 780)
    shoot(driver, tmp_path, "web-chat-phone.png")
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                           {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    shoot(driver, tmp_path, "web-chat-phone-dark.png")
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    driver.set_window_size(1280, 900)
    assert csp_violations(driver) == []

    # quick exit with Escape: the neutral site, the chat gone from the tab and from the history
    driver.find_element(By.ID, "q").send_keys("half-written question")
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    WebDriverWait(driver, 10).until(lambda d: d.current_url == neutral)
    driver.back()                         # back goes to the page before the chat, not to the chat
    WebDriverWait(driver, 10).until(lambda d: d.current_url == neutral)
    driver.get(bot.base + "/")
    fresh = wait_replies(driver, 0)
    assert len(fresh) == 2 and not driver.find_elements(By.CSS_SELECTOR, "#log li.me")   # welcome + picker only
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"   # a new anonymous session

    # and with the button
    driver.find_element(By.ID, "exit").click()
    WebDriverWait(driver, 10).until(lambda d: d.current_url == neutral)
    assert driver.execute_script("return sessionStorage.length") == 0


def test_keyboard_only_and_labels(bot, browser):
    driver = browser
    driver.get(bot.base + "/")
    driver.execute_script("sessionStorage.clear()")   # a new conversation: welcome and picker
    driver.refresh()
    wait_replies(driver, 0)
    # every control is a real button or a labelled field, reachable with Tab, focus visible
    assert driver.find_element(By.CSS_SELECTOR, "label[for=q]").get_attribute("textContent")
    assert driver.find_element(By.ID, "log").get_attribute("role") == "log"
    assert driver.find_element(By.ID, "exit").get_attribute("aria-label")
    body = driver.find_element(By.TAG_NAME, "body")
    reached = []
    wanted = {"exit", "emergency", "menu", "language", "q", "send", "forget"}
    for _ in range(60):
        body = driver.switch_to.active_element
        body.send_keys(Keys.TAB)
        active = driver.switch_to.active_element
        reached.append(active.get_attribute("id") or active.text)
        outline = driver.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none", reached[-1]
        if wanted <= set(reached):
            break
    assert wanted <= set(reached), reached
    # a choice pressed with the keyboard
    before = len(replies(driver))
    driver.find_element(By.ID, "menu").send_keys(Keys.ENTER)
    menu = wait_replies(driver, before)[-1]
    topic = menu.find_element(By.CSS_SELECTOR, ".choices button")
    topic.send_keys(Keys.ENTER)
    WebDriverWait(driver, 10).until(lambda d: "«" in d.find_elements(By.CSS_SELECTOR, "#log li.bot")[-1].text)
