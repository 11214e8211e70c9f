"""The local page (edge_asd/web) of a real daemon process, as an engineer uses it.

One daemon (two machines replaying a fan recording in real time, a real mosquitto, the
page on a free port with a password) serves the tests of this module:
- Debian's chromium (headless, driven by selenium through Debian's chromedriver; nothing
  downloaded) opens the page, which shows each machine's state and a score trace that
  moves; its screenshot is written to test-artifacts/web-page.png;
- a wrong password and no password get 401; a path out of the evidence folder gets 404;
- the JSON API answers what the page draws.
Other daemons: with no `web` section nothing listens; a port in use is one config error.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import numpy as np
import pytest

from edge_asd.mosquitto import free_port
from tests.harness.broker import Broker
from tests.harness.browser import chromium_missing, headless_chromium, open_page
from tests.harness.daemon_process import (
    DaemonProcess,
    flapping_calibration,
    flapping_config,
    write_config,
)

pytestmark = [pytest.mark.system, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "correct horse battery staple"
MACHINES = ("pump-1", "pump-2")
STATES = {"normal", "anomaly", "unknown", "maintenance"}
SCREENSHOT_SECONDS = 15  # of trace drawn before the screenshot
PLANTED_FOLDER = "20991231T000000Z_planted"  # an event folder's name, with no event.json
LEAK = '{"device_id": "planted", "mqtt": "not evidence"}'
CLIP_URL = re.compile(r"/api/evidence/pump-[12]/\d{8}T\d{6}Z_[0-9a-f-]{36}/(start|peak)\.flac")


@pytest.fixture(scope="module")
def flapping(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return flapping_calibration(tiny_model, tmp_path_factory.mktemp("flapping"))


@pytest.fixture(scope="module")
def page(flapping, tmp_path_factory: pytest.TempPathFactory):
    """A daemon serving the page: yields {port, daemon, folder}."""
    folder = tmp_path_factory.mktemp("web")
    broker = Broker(folder / "broker")
    broker.start()
    port = free_port()
    config = flapping_config(
        flapping, folder, {"port": broker.port}, realtime=True,
        web={"enabled": True, "port": port, "password_env": "EDGE_ASD_TEST_WEB_PASSWORD"},
    )  # fmt: skip
    second = dict(config["machines"][0], name=MACHINES[1])
    config["machines"].append(second)
    # The daemon's own evidence (on by default) fills the events; beside it, planted files
    # that only the evidence layout's checks can refuse (PLANTED).
    evidence = folder / "evidence"
    (evidence / MACHINES[0] / "half-made").mkdir(parents=True)
    (evidence / MACHINES[0] / PLANTED_FOLDER).mkdir()
    for planted in ("event.json", "half-made/event.json", f"{PLANTED_FOLDER}/daemon.yaml"):
        (evidence / MACHINES[0] / planted).write_text(LEAK)
    (evidence / "event.json").write_text(LEAK)
    (evidence / MACHINES[0] / PLANTED_FOLDER / "event.png").symlink_to(folder / "daemon.yaml")
    daemon = DaemonProcess(
        write_config(folder, config),
        folder / "daemon.log",
        env={"EDGE_ASD_TEST_WEB_PASSWORD": PASSWORD},
    )
    try:
        daemon.wait_for_log(lambda d: f"page on http://127.0.0.1:{port}/" in d.log(), 60)
        yield {"port": port, "daemon": daemon, "folder": folder}
    finally:
        daemon.ensure_dead()
        broker.stop()


def get(port: int, path: str, password: str | None = PASSWORD) -> tuple[int, bytes, Any]:
    """A raw GET (http.client sends the path as given: no '..' clean-up on the way)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {}
    if password is not None:
        token = base64.b64encode(f"edge-asd:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), response.headers
    finally:
        connection.close()


def wait_for_json(port: int, path: str, predicate, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while True:
        status, body, _ = get(port, path)
        if status == 200 and predicate(json.loads(body)):
            return json.loads(body)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path}: {status} {body[:300]!r}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium (tests/harness/browser.py); skipped where it is absent."""
    missing = chromium_missing()
    if missing:
        pytest.skip(missing)
    with headless_chromium() as driver:
        yield driver


def wait_until(driver, condition, timeout_s: float = 60.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s, poll_frequency=0.25).until(condition)


def test_the_daemon_logs_the_pages_address_without_a_logging_error(page):
    log = page["daemon"].log()
    assert f"page on http://127.0.0.1:{page['port']}/" in log
    assert "Logging error" not in log and "Traceback" not in log


def test_the_page_shows_each_machines_state_and_a_score_trace_that_moves(page, browser):
    from selenium.webdriver.common.by import By

    open_page(browser, f"http://127.0.0.1:{page['port']}/", "edge-asd", PASSWORD)

    def states(driver) -> dict[str, str] | bool:
        shown = {}
        for card in driver.find_elements(By.CSS_SELECTOR, "#machines .machine"):
            state = card.find_element(By.CSS_SELECTOR, ".state").text
            shown[card.get_attribute("data-machine")] = state
        return shown if set(shown) == set(MACHINES) and set(shown.values()) <= STATES else False

    shown = wait_until(browser, states)
    assert set(shown) == set(MACHINES)

    def trace_end(driver) -> float | bool:
        canvas = driver.find_element(By.ID, "trace")
        points = int(canvas.get_attribute("data-points") or 0)
        last = canvas.get_attribute("data-last-time")
        return float(last) if points >= 2 and last else False

    first = wait_until(browser, trace_end)
    wait_until(browser, lambda d: trace_end(d) and trace_end(d) > first)  # a new window came
    for name in MACHINES:  # every machine's own small trace is drawn too
        spark = browser.find_element(By.CSS_SELECTOR, f'.machine[data-machine="{name}"] canvas')
        assert int(spark.get_attribute("data-points")) >= 1
    wait_until(browser, lambda d: d.find_element(By.ID, "spectrogram").get_attribute("data-time"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#detectability tbody tr")
    assert rows, "the calibration's detectability table is shown"

    def event_with_a_player(driver) -> tuple[str, str] | bool:
        for row in driver.find_elements(By.CSS_SELECTOR, "#events .event"):
            players = row.find_elements(By.TAG_NAME, "audio")
            if players and players[0].get_attribute("src"):
                return row.text, players[0].get_attribute("src")
        return False

    text, audio = wait_until(browser, event_with_a_player)  # one of the daemon's own events
    wait_until(browser, lambda d: (trace_end(d) or 0) > first + SCREENSHOT_SECONDS)
    assert any(name in text for name in MACHINES) and "peak" in text
    clip_path = urlsplit(audio).path
    assert CLIP_URL.fullmatch(clip_path), clip_path
    status, body, _ = get(page["port"], clip_path)
    assert status == 200 and body[:4] == b"fLaC"
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "web-page.png"))


def scores_shown(driver) -> list[str] | bool:
    """Each machine card's score text, once every card shows a number (not '–')."""
    from selenium.webdriver.common.by import By

    texts = [card.text for card in driver.find_elements(By.CSS_SELECTOR, "#machines .machine")]
    shown = len(texts) == len(MACHINES) and all("score " in t and "score –" not in t for t in texts)
    return texts if shown else False


def test_every_card_keeps_showing_its_latest_score_between_windows(page, browser):
    # The overview asks only for windows it has not drawn (since=): most polls bring none,
    # and the cards showed "score –" then (the fresh-user trial saw it nearly always).
    open_page(browser, f"http://127.0.0.1:{page['port']}/", "edge-asd", PASSWORD)
    for _ in range(8):  # polls that bring no new window included
        wait_until(browser, scores_shown, timeout_s=5)
        time.sleep(0.4)


def test_a_page_opened_with_the_password_in_its_url_shows_live_data(page, browser):
    # http://user:password@host/: browsers refuse fetches whose URL, resolved against the
    # page's, carries credentials; the page asks on location.origin.
    browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
    try:
        browser.get(f"http://edge-asd:{quote(PASSWORD)}@127.0.0.1:{page['port']}/")
        wait_until(browser, scores_shown)
    finally:
        open_page(browser, "about:blank", "edge-asd", PASSWORD)  # the module's other tests


def test_a_wrong_password_or_none_is_refused(page):
    for password in (None, "wrong", PASSWORD + " "):
        for path in ("/", "/api/status", "/static/page.js", "/api/events",
                     f"/api/evidence/pump-1/{PLANTED_FOLDER}/event.png"):  # fmt: skip
            status, _, headers = get(page["port"], path, password)
            assert status == 401, (password, path)
            assert headers["WWW-Authenticate"].startswith("Basic")
    assert get(page["port"], "/api/status")[0] == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/evidence/pump-1/../../daemon.yaml",
        "/api/evidence/pump-1/..%2F..%2Fdaemon.yaml/event.json",
        "/api/evidence/../daemon.yaml",
        "/api/evidence/pump-1/20260101T120000Z_x/../../../daemon.log",
        "/static/../daemon.yaml",
        # three parts, each file there: only evidence_file's checks refuse these
        "/api/evidence/pump-1/half-made/event.json",
        "/api/evidence/pump-1/%2E%2E/event.json",
        f"/api/evidence/pump-1/{PLANTED_FOLDER}/daemon.yaml",
        f"/api/evidence/pump-1/{PLANTED_FOLDER}/event.png",
    ],
)
def test_paths_out_of_the_evidence_folders_are_refused(page, path):
    status, body, _ = get(page["port"], path)
    assert status == 404, body
    assert b"device_id" not in body and b"mqtt" not in body


def test_the_api_gives_what_the_page_draws(page):
    port = page["port"]
    status = wait_for_json(port, "/api/status", lambda s: s["windows_scored"] > 0)
    assert status["device_id"] == "dev-1" and status["engine"]
    for key in ("health", "uptime_seconds", "engine_fallback_reason", "outbox_depth",
                "windows_skipped"):  # fmt: skip
        assert key in status
    overview = wait_for_json(port, "/api/machines", lambda o: len(o["machines"][0]["trace"]) >= 2)
    assert [m["name"] for m in overview["machines"]] == list(MACHINES)
    last = overview["machines"][0]["trace"][-1][0]
    newer = json.loads(get(port, f"/api/machines?since={last}")[1])["machines"]
    assert all(row[0] > last for m in newer for row in m["trace"])
    machine = wait_for_json(port, "/api/machines/pump-1", lambda m: len(m["trace"]) >= 2)
    assert machine["state"] in STATES and machine["why"]
    assert machine["calibration"]["created_at"] and machine["calibration"]["detectability"]
    last = machine["trace"][-1][0]
    newer = wait_for_json(port, f"/api/machines/pump-1?since={last}", lambda m: m["trace"])
    assert all(row[0] > last for row in newer["trace"])
    picture = json.loads(get(port, "/api/machines/pump-1/spectrogram")[1])
    values = np.asarray(picture["values"])
    assert values.shape == (64, 156) and values.max() == 255
    events = wait_for_json(port, "/api/events", lambda e: e["events"])["events"]
    started = [e["event"]["started_at"] for e in events]
    assert started == sorted(started, reverse=True)  # newest first
    newest = events[0]
    assert newest["machine"] in MACHINES and newest["event"]["event_id"] in newest["folder"]
    clip = Path(newest["event"]["clip"])  # the payload's path on the device, served by name
    assert clip.parent.name == newest["folder"] and clip.name in newest["urls"]
    status, body, headers = get(port, newest["urls"][clip.name])
    assert status == 200 and headers["Content-Type"] == "audio/flac" and body[:4] == b"fLaC"
    only = json.loads(get(port, "/api/events?machine=pump-2")[1])["events"]
    assert {e["machine"] for e in only} <= {"pump-2"}
    assert get(port, "/api/machines/no-such")[0] == 404


def test_the_daemon_serving_the_page_stops_cleanly(page):
    """Last of the page's tests: SIGTERM closes the server, the daemon exits 0."""
    daemon = page["daemon"]
    get(page["port"], "/api/status")  # a connection the browser may still hold open
    assert daemon.terminate() == 0
    log = daemon.log()
    assert "stopped cleanly" in log
    assert "Logging error" not in log and "Traceback" not in log and " ERROR " not in log
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", page["port"]), timeout=2).close()


def config_error_log(flapping, broker: Broker, folder: Path, web: dict) -> str:
    """The log of a daemon with this `web` section, which must exit 2 (a config error)."""
    config = flapping_config(flapping, folder, {"port": broker.port}, web=web)
    daemon = DaemonProcess(write_config(folder, config), folder / "daemon.log")
    try:
        assert daemon.process.wait(timeout=60) == 2
    finally:
        daemon.ensure_dead()
    return daemon.log()


def test_an_unset_page_password_variable_is_one_config_error(
    flapping, mqtt_broker: Broker, tmp_path: Path
):
    web = {"enabled": True, "port": free_port(), "password_env": "EDGE_ASD_TEST_UNSET_PW"}
    log = config_error_log(flapping, mqtt_broker, tmp_path, web)
    assert "web.password_env: the environment variable EDGE_ASD_TEST_UNSET_PW is not set" in log
    assert "Traceback" not in log
    assert "warmed up" not in log  # refused at once, before the model loads and warms up


def listening_ports(pid: int) -> set[int]:
    """TCP ports process `pid` listens on (its socket inodes in /proc/net/tcp{,6})."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_the_page_is_off_by_default(flapping, mqtt_broker: Broker, tmp_path: Path):
    config = flapping_config(flapping, tmp_path, {"port": mqtt_broker.port}, realtime=True)
    assert "web" not in config
    daemon = DaemonProcess(write_config(tmp_path, config), tmp_path / "daemon.log")
    try:
        daemon.wait_for_log(lambda d: "scoring pump-1" in d.log())
        assert listening_ports(daemon.process.pid) == set()
        assert "page on" not in daemon.log()
        assert daemon.terminate() == 0
    finally:
        daemon.ensure_dead()


def test_a_port_in_use_is_one_config_error_naming_web_port(
    flapping, mqtt_broker: Broker, tmp_path: Path
):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = config_error_log(flapping, mqtt_broker, tmp_path, {"enabled": True, "port": port})
    assert f"web.port: cannot listen on 127.0.0.1:{port}" in log
    assert "Traceback" not in log
