"""The dashboard (``GET /ui``) in a real headless Chromium, driven by Selenium, against a
cluster of three ``twistd gossipdht`` processes: one cluster and one browser session for
every check, in the order an operator would see them.

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them): Selenium is
given ``/usr/bin/chromedriver`` and downloads nothing.  Without them the test is skipped,
saying which is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from gossipdht.membership.member import SwimConfig
from gossipdht.tools.localcluster import join, wait_for

CHROMIUM = os.environ.get("GOSSIPDHT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("GOSSIPDHT_CHROMEDRIVER", "/usr/bin/chromedriver")
#: The page refreshes every 1.5 s (dashboard.js); a page answer is awaited this long.
PAGE_DEADLINE = 15.0
_SWIM = SwimConfig()
#: A killed member is dead once its suspicion times out: at most ``suspicion_max_mult``
#: times max(2, log10 N) seconds after a probe window found it silent; then one refresh.
DETECTION_DEADLINE = _SWIM.suspicion_max_mult * 2 + 4 * _SWIM.probe_window + 2 * 1.5
KEY = "user/42 ü"

pytestmark = pytest.mark.integration


def _missing() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"{path} not found: apt-get install {package} to run the dashboard's browser test"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture
def browser():
    missing = _missing()
    if missing:
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,800", "--hide-scrollbars"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def name(node) -> str:
    return f"127.0.0.1:{node.port}"


def rows(driver) -> dict[str, str]:
    """The members table: each row's member and state, as the page shows them."""
    return driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#members tbody tr')]"
        ".map(r => [r.dataset.member, r.querySelector('.state').textContent]))")


def arc_colours(driver) -> dict[str, set[str]]:
    """The fill colours of the ring's token arcs, by member."""
    pairs = driver.execute_script(
        "return [...document.querySelectorAll('#ring path.arc')].map(p => [p.dataset.member, p.getAttribute('fill')])")
    colours: dict[str, set[str]] = {}
    for member, fill in pairs:
        colours.setdefault(member, set()).add(fill)
    return colours


def test_the_dashboard_draws_the_cluster_follows_a_kill_and_asks_for_a_token(node_factory, browser, tmp_path: Path):
    nodes = [node_factory("--storage", "memory", "--replicas", "2") for _ in range(3)]
    for node in nodes[1:]:
        join(node, nodes[0])
    names = sorted(map(name, nodes))
    for i in range(150):  # requests for the charts and keys for the table
        assert nodes[0].request("PUT", f"/db/k{i}", b"v", {"Content-Type": "text/plain"})[0] == 204
        assert nodes[0].request("GET", f"/db/k{i}")[0] == 200

    browser.get(nodes[0].url("/ui"))

    # The members, all alive, and the ring: one colour per member, a different one each.
    wait_for(lambda: rows(browser) == dict.fromkeys(names, "alive"), PAGE_DEADLINE)
    wait_for(lambda: sorted(arc_colours(browser)) == names, PAGE_DEADLINE)
    colours = arc_colours(browser)
    assert all(len(fills) == 1 for fills in colours.values()), colours
    assert len({fill for fills in colours.values() for fill in fills}) == len(names), colours

    # A key typed in: its owners as /dht/owners answers them, in order, and a marker on the ring.
    browser.find_element("id", "key").send_keys(KEY)
    status, _, body = nodes[0].request("GET", "/dht/owners/" + quote(KEY, safe="") + "?format=json")
    assert status == 200
    expected = [f"{o['name']} {o['host']}:{o['port']}" for o in json.loads(body)]
    assert len(expected) == 2
    shown = lambda: browser.execute_script(  # noqa: E731
        "return [...document.querySelectorAll('#owners li')].map(li => li.textContent)")
    wait_for(lambda: shown() == expected, PAGE_DEADLINE)
    assert browser.execute_script("return document.querySelectorAll('#marker line').length") == 1

    # The charts have the requests of a completed step; then the picture for the README.
    wait_for(lambda: browser.execute_script(
        "const chart = document.querySelector('.chart[data-operation=put]');"
        "return chart !== null && Number(chart.dataset.rate) > 0"), PAGE_DEADLINE)
    screenshot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(screenshot))
    print(f"dashboard screenshot: {screenshot}")

    # kill -9 of one member: its row turns dead within the detection time.
    victim = nodes[2]
    victim.kill9()
    killed = time.monotonic()
    wait_for(lambda: rows(browser).get(name(victim)) == "dead", DETECTION_DEADLINE)
    print(f"row dead {time.monotonic() - killed:.1f} s after the kill (deadline {DETECTION_DEADLINE:g} s)")
    survivors = [n for n in names if n != name(victim)]
    assert {member: state for member, state in rows(browser).items() if member != name(victim)} == \
        dict.fromkeys(survivors, "alive")
    dead = tmp_path / "dashboard-dead.png"
    assert browser.save_screenshot(str(dead))
    print(f"dashboard screenshot after the kill: {dead}")
    if os.environ.get("GOSSIPDHT_SCREENSHOT"):  # where an integrator wants a copy
        shutil.copyfile(screenshot, os.environ["GOSSIPDHT_SCREENSHOT"])

    # The ring of 1 and of 50 members, drawn by the page's own code: a colour each.
    for count in (1, 50):
        fills = browser.execute_script(
            "const n = arguments[0];"
            "const members = [...Array(n).keys()].map(i => ({name: 'm' + String(i).padStart(2, '0'), share: 1 / n}));"
            "drawRing({checksum: 'c' + n, members, slices: [...Array(720).keys()].map(i => i % n)});"
            "const fills = [...document.querySelectorAll('#ring path.arc')].map(p => p.dataset.member + ' ' + p.getAttribute('fill'));"
            "return [...new Set(fills)];", count)
        assert len(fills) == count and len({fill.split(" ")[1] for fill in fills}) == count, fills

    # No console errors, from the first load on.
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []

    # With API tokens: the page loads without one, asks for one at the first 401, then draws.
    tokens = tmp_path / "api-tokens"
    tokens.write_text("read dashboard-r3ad-token\n")
    guarded = node_factory("--storage", "memory", "--api-tokens", str(tokens), name="guarded")
    browser.get(guarded.url("/ui"))
    form = browser.find_element("id", "token-form")
    wait_for(form.is_displayed, PAGE_DEADLINE)
    browser.find_element("id", "token").send_keys("dashboard-r3ad-token")
    form.submit()
    wait_for(lambda: rows(browser) == {name(guarded): "alive"}, PAGE_DEADLINE)
    assert not form.is_displayed()
