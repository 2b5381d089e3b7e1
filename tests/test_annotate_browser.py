"""End to end in headless Chromium: sign in, rank a task with the keyboard and buttons, submit; the
ranking is in the database and in the export. Skips when Debian's chromium / chromium-driver are
missing (`make test` installs them when run as root), except under CI, where a skip would hide it.

Set REWARDLAB_SCREENSHOT=docs/img/annotate_rank.png to refresh the screenshot in the docs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewardlab.annotate import auth
from rewardlab.annotate.export import export_labels
from rewardlab.annotate.records import TaskInput
from rewardlab.annotate.store import Store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
XSS = "<script>document.title='pwned'</script>"
TASKS = [
    TaskInput(
        [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "How do I keep bread from going stale?"},
        ],
        [
            "Store it in a paper bag at room temperature, or slice and freeze what you won't eat soon.",
            "Put it in the fridge.",
            "Bread goes stale because starch recrystallises. Keep it cut-side down on a board for a day or "
            "two; for longer, freeze slices and toast them from frozen.",
        ],
        "bread-1",
    ),
    TaskInput("Reply with a harmless greeting.", ["Hello!", XSS], "xss-1"),
]


DRAG_TO_END = """
const card = arguments[0], list = card.parentElement, data = new DataTransfer();
card.dispatchEvent(new DragEvent("dragstart", {bubbles: true, dataTransfer: data}));
const bottom = list.lastElementChild.getBoundingClientRect().bottom;
const over = {bubbles: true, cancelable: true, dataTransfer: data, clientY: bottom + 5};
list.dispatchEvent(new DragEvent("dragover", over));
card.dispatchEvent(new DragEvent("dragend", {bubbles: true, dataTransfer: data}));
"""


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the dev extra)"
    if not (CHROMIUM and CHROMEDRIVER):
        return "Debian's chromium and chromium-driver are not installed (make test installs them as root)"
    return None


@pytest.fixture(autouse=True)
def browser_available(monkeypatch: pytest.MonkeyPatch) -> None:
    why = _missing()
    if why and os.environ.get("CI"):
        pytest.fail(f"{why}; CI must run the browser test")
    if why:
        pytest.skip(why)
    monkeypatch.setattr(auth, "SCRYPT_N", 2**10)
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never try to download a driver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path):
    db = str(tmp_path / "browser.db")
    store = Store(db)
    store.add_user("alice", "alice-pw")
    store.add_tasks(TASKS)
    port = free_port()
    log = tmp_path / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rewardlab.annotate", "serve", "--db", db, "--port", str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    import httpx

    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", store
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def driver(tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-quic",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1000,960",
        f"--user-data-dir={tmp_path / 'chrome-profile'}",
    ):
        options.add_argument(flag)
    d = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    d.implicitly_wait(5)
    yield d
    d.quit()


def test_sign_in_rank_submit_and_export(server: tuple[str, Store], driver, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    base, store = server
    driver.get(base + "/")
    driver.find_element(By.ID, "name").send_keys("alice")
    driver.find_element(By.ID, "password").send_keys("alice-pw")
    driver.find_element(By.ID, "login").click()
    WebDriverWait(driver, 10).until(lambda d: "/task/" in d.current_url and d.find_elements(By.ID, "ranking"))
    assert "How do I keep bread from going stale?" in driver.find_element(By.CSS_SELECTOR, ".prompt").text

    def cards() -> list:
        return driver.find_elements(By.CSS_SELECTOR, "#ranking .card")

    def ranks() -> dict[int, str]:
        return {
            int(c.get_attribute("data-pos")): c.find_element(By.TAG_NAME, "select").get_attribute("value")
            for c in cards()
        }

    assert set(ranks().values()) == {""}  # nothing is pre-ranked
    # Drag (HTML5 drag events, synthesised: WebDriver cannot drag natively): the first card to the end.
    before = [int(c.get_attribute("data-pos")) for c in cards()]
    driver.execute_script(DRAG_TO_END, cards()[0])
    after = [int(c.get_attribute("data-pos")) for c in cards()]
    assert after == before[1:] + before[:1]
    assert ranks() == {after[0]: "1", after[1]: "2", after[2]: "3"}
    # Keyboard: focus the last card and move it to the top; the selects follow the order.
    last = cards()[-1]
    moved = int(last.get_attribute("data-pos"))
    driver.execute_script("arguments[0].focus()", last)
    last.send_keys(Keys.ARROW_UP)
    driver.switch_to.active_element.send_keys(Keys.ARROW_UP)
    order = [int(c.get_attribute("data-pos")) for c in cards()]
    assert order[0] == moved
    assert ranks() == {order[0]: "1", order[1]: "2", order[2]: "3"}
    # Buttons: move the second card down, then tie the (new) last card with the one above it.
    cards()[1].find_element(By.CSS_SELECTOR, ".down").click()
    order = [int(c.get_attribute("data-pos")) for c in cards()]
    cards()[2].find_element(By.CSS_SELECTOR, ".tie").click()
    assert ranks() == {order[0]: "1", order[1]: "2", order[2]: "2"}
    # Selects: rank by content in one go (the card order follows): the explanation first, the fridge last.
    best_first = {"Bread goes": "1", "Store it": "2", "Put it": "3"}
    for card in cards():
        value = next(v for k, v in best_first.items() if k in card.text)
        driver.execute_script(
            "arguments[0].value = arguments[1]", card.find_element(By.TAG_NAME, "select"), value
        )
    driver.execute_script(
        "arguments[0].dispatchEvent(new Event('change', {bubbles: true}))",
        cards()[0].find_element(By.TAG_NAME, "select"),
    )
    assert [c.find_element(By.TAG_NAME, "select").get_attribute("value") for c in cards()] == ["1", "2", "3"]
    assert "Bread goes" in cards()[0].text and "Put it" in cards()[2].text
    driver.find_element(By.CSS_SELECTOR, "input[name=confidence][value='4']").click()
    driver.find_element(By.CSS_SELECTOR, "textarea[name=note]").send_keys("the first two are both fine")
    shot = tmp_path / "rank.png"
    driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("REWARDLAB_SCREENSHOT"):
        shutil.copy(shot, os.environ["REWARDLAB_SCREENSHOT"])
    aid = int(driver.current_url.rsplit("/", 1)[1])
    driver.find_element(By.ID, "submit").click()

    # The next task: its <script> response is shown as text and never runs.
    WebDriverWait(driver, 10).until(
        lambda d: "/task/" in d.current_url and int(d.current_url.rsplit("/", 1)[1]) != aid
    )
    assert XSS in driver.find_element(By.ID, "ranking").text
    assert driver.title != "pwned"
    assert "Done 1" in driver.find_element(By.ID, "progress").text

    # Stored in the task's own response order: [paper bag, fridge, explanation] -> ranks [2, 3, 1].
    expected = [2, 3, 1]
    (label,) = store.labels()
    assert label.ranking == expected
    assert (label.annotator, label.task_external_id, label.confidence, label.note) == (
        "alice",
        "bread-1",
        4,
        "the first two are both fine",
    )
    export_labels(store.labels(), tmp_path / "out.jsonl")
    (row,) = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert (row["id"], row["annotator"], row["ranking"], row["confidence"]) == (
        "bread-1",
        "alice",
        expected,
        4,
    )
