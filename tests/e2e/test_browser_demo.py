"""The demo page in a real browser: headless Debian Chromium driven by Playwright, against
a real `serve --dev` process, with the real IVS web broadcast SDK (`make web-sdk`).

Nothing may leave loopback: every request of the browser goes through a route that
aborts anything not on this machine (the SDK reaches for AWS analytics), Chromium
resolves no name but `localhost`, and each test ends by checking that no request to
another host completed. Screenshots land in `test-artifacts/browser/`.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright import sync_api
from playwright.sync_api import Browser, Page, expect

from tests.support.processes import background
from tests.support.redis_server import free_port
from tests.support.tools import needs_tool
from token_service.http.routes.demo import SDK_BUNDLE

REPO = Path(__file__).resolve().parents[2]
SDK_DIR = REPO / ".web-sdk"
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("TOKEN_SERVICE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # A second fence behind the request routes: nothing resolves but the loopback names.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
# Generous limits: these tests are about the page, not about rate limiting.
SERVER_ENV = {
    "TOKEN_SERVICE_REDIS_URL": "",
    "TOKEN_SERVICE_LOG_FORMAT": "text",
    "TOKEN_SERVICE_RATE_LIMIT_USER": "600/minute",
    "TOKEN_SERVICE_RATE_LIMIT_IP": "600/minute",
}

# A busy two-core machine (the suite runs in parallel) can take seconds to parse the SDK.
expect.set_options(timeout=15_000)

pytestmark = needs_tool(CHROMIUM, "Debian's chromium, which the browser tests drive")


def is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https", "ws", "wss"}:
        return True  # data:, blob: and the like never reach a network
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


# ------------------------------------------------------------------ the dev server


@dataclass(frozen=True)
class DevServer:
    port: int
    base: str
    demo_url: str


def _read_banner(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError("serve --dev exited early:\n" + "".join(lines))
        lines.append(line)
        if sum(1 for seen in lines if seen.startswith("=" * 20)) == 3:
            return "".join(lines)
    raise AssertionError("no banner within the timeout:\n" + "".join(lines))


def _drain(proc: subprocess.Popen[str]) -> None:
    # Keep reading the server's log so a full pipe never blocks it.
    assert proc.stdout is not None
    for _ in proc.stdout:
        pass


@contextmanager
def dev_server(port: int, **env: str) -> Iterator[DevServer]:
    with background("serve", "--dev", "--port", str(port), env={**SERVER_ENV, **env}) as proc:
        banner = _read_banner(proc)
        threading.Thread(target=_drain, args=(proc,), daemon=True).start()
        demo = re.search(r"demo page\s+(http://\S+)", banner)
        assert demo is not None, banner
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while httpx.get(f"{base}/healthz", timeout=2).status_code != 200:
            assert time.monotonic() < deadline, "the dev server did not become healthy"
            time.sleep(0.1)
        yield DevServer(port=port, base=base, demo_url=demo.group(1))


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    """One `serve --dev` with the SDK, allowing the page on http://localhost:<port> by CORS."""
    if not (SDK_DIR / SDK_BUNDLE).is_file():
        pytest.fail(f"the IVS web SDK is not in {SDK_DIR}: run `make web-sdk` first")
    port = free_port()
    # localhost and 127.0.0.1 are different origins: the page loaded from one calls the other.
    with dev_server(
        port,
        TOKEN_SERVICE_WEB_SDK_DIR=str(SDK_DIR),
        TOKEN_SERVICE_CORS_ORIGINS=f"http://localhost:{port}",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """A `serve --dev` without the SDK, allowing each user one token an hour."""
    no_sdk = tmp_path_factory.mktemp("no-sdk")
    with dev_server(
        free_port(), TOKEN_SERVICE_WEB_SDK_DIR=str(no_sdk), TOKEN_SERVICE_RATE_LIMIT_USER="1/hour"
    ) as running:
        yield running


# ------------------------------------------------------------------ the browser


@dataclass
class Traffic:
    """What the browser asked for beyond loopback: blocked, or (a failure) completed."""

    blocked: list[str] = field(default_factory=list)
    escaped: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def traffic() -> Traffic:
    return Traffic()


@pytest.fixture
def page(browser: Browser, traffic: Traffic, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 960})

    def guard(route: sync_api.Route) -> None:
        if is_loopback(route.request.url):
            route.continue_()
        else:
            traffic.blocked.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", guard)
    context.on(
        "requestfinished",
        lambda r: None if is_loopback(r.url) else traffic.escaped.append(r.url),
    )
    tab = context.new_page()
    tab.on("websocket", lambda ws: traffic.websockets.append(ws.url))
    try:
        yield tab
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        context.close()
    assert traffic.escaped == [], f"requests left loopback: {traffic.escaped}"
    assert [ws for ws in traffic.websockets if not is_loopback(ws)] == []


def open_demo(page: Page, url: str, *, sdk: bool = True) -> None:
    """Open the page and wait until it is set up and, when `sdk`, the SDK has loaded."""
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    if sdk:
        expect(page.locator("#sdk-status")).to_have_class(re.compile(r"\bok\b"))


def request_token(page: Page) -> sync_api.Response:
    """Click the button; the participant-token response the page received."""
    with page.expect_response(lambda r: r.url.endswith("/v1/participant-tokens")) as answer:
        page.click("#request-token")
    return answer.value


# ------------------------------------------------------------------ the tests


def test_sdk_accepts_the_token_with_the_participant_id_the_service_returned(
    page: Page, server: DevServer
) -> None:
    open_demo(page, server.demo_url)
    response = request_token(page)
    assert response.status == 201
    issued = response.json()
    expect(page.locator("#sdk-verdict")).to_have_class(re.compile(r"\bgood\b"))
    expect(page.locator("#sdk-participant-id")).to_have_text(issued["participantId"])


def test_refreshing_exchanges_the_token_for_the_same_participant_and_the_sdk_reads_it(
    page: Page, server: DevServer
) -> None:
    open_demo(page, server.demo_url)
    issued = request_token(page).json()
    expect(page.locator("#refresh-token")).to_be_enabled()
    with page.expect_response(lambda r: r.url.endswith("/exchange")) as answer:
        page.click("#refresh-token")
    exchanged = answer.value.json()
    assert answer.value.status == 200
    assert exchanged["participantId"] == issued["participantId"]
    assert exchanged["token"] != issued["token"]
    expect(page.locator("#outcome")).to_contain_text("exchanged")
    expect(page.locator("#response-body")).to_contain_text(exchanged["token"])
    expect(page.locator("#sdk-verdict")).to_have_class(re.compile(r"\bgood\b"))
    expect(page.locator("#sdk-participant-id")).to_have_text(issued["participantId"])


def test_the_page_shows_the_decoded_claims_and_the_expiry_countdown(
    page: Page, server: DevServer
) -> None:
    open_demo(page, server.demo_url)
    issued = request_token(page).json()
    expect(page.locator("#token-claims")).to_contain_text(f'"jti": "{issued["participantId"]}"')
    expect(page.locator("#expiry")).to_contain_text("Expires in")


def test_a_token_the_sdk_cannot_parse_shows_the_sdk_error(page: Page, server: DevServer) -> None:
    def truncate_token(route: sync_api.Route) -> None:
        # The service's real answer, with a token cut to two parts: no JWT at all.
        answer = route.fetch()
        body = answer.json()
        body["token"] = ".".join(body["token"].split(".")[:2])
        route.fulfill(response=answer, json=body)

    page.route("**/v1/participant-tokens", truncate_token)
    open_demo(page, server.demo_url)
    request_token(page)
    expect(page.locator("#sdk-verdict")).to_have_class(re.compile(r"\bbad\b"))
    expect(page.locator("#sdk-error")).to_contain_text("Token format incorrect")


def test_a_viewer_asking_to_publish_sees_the_403_and_why(page: Page, server: DevServer) -> None:
    open_demo(page, server.demo_url)
    page.get_by_role("button", name="Viewer asking to publish (403)").click()
    assert request_token(page).status == 403
    expect(page.locator("#problem-status")).to_have_text("403")
    expect(page.locator("#outcome")).to_contain_text("PUBLISH")


def test_an_invalid_app_user_jwt_shows_the_401(page: Page, server: DevServer) -> None:
    open_demo(page, server.demo_url)
    page.check("#auth-paste")
    page.fill("#user-jwt", "not-a-jwt")
    assert request_token(page).status == 401
    expect(page.locator("#problem-status")).to_have_text("401")
    expect(page.locator("#outcome")).to_have_class(re.compile(r"\bbad\b"))


def test_a_page_on_another_allowed_origin_gets_a_token_through_cors(
    page: Page, server: DevServer
) -> None:
    open_demo(page, f"http://localhost:{server.port}/demo")
    page.click("summary")
    page.fill("#service-url", server.base)
    response = request_token(page)
    assert (response.url, response.status) == (f"{server.base}/v1/participant-tokens", 201)
    expect(page.locator("#sdk-participant-id")).to_have_text(response.json()["participantId"])


def test_the_sdk_reaches_for_aws_and_is_stopped_at_loopback(
    page: Page, server: DevServer, traffic: Traffic
) -> None:
    open_demo(page, server.demo_url)
    request_token(page)
    expect(page.locator("#sdk-verdict")).to_have_class(re.compile(r"\bgood\b"))
    # The guard is not idle: the SDK's analytics calls to AWS arrive and are aborted.
    deadline = time.monotonic() + 10
    while not traffic.blocked and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert traffic.blocked, "the SDK made no request beyond loopback: is the guard wired?"
    assert traffic.escaped == []


def test_without_the_sdk_the_page_still_issues_a_token(page: Page, bare_server: DevServer) -> None:
    open_demo(page, bare_server.demo_url, sdk=False)
    expect(page.locator("#sdk-status")).to_contain_text("not installed")
    issued = request_token(page).json()
    expect(page.locator("#outcome")).to_contain_text(issued["participantId"])
    expect(page.locator("#sdk-verdict")).to_contain_text("make web-sdk")


def test_a_rate_limited_request_shows_the_429_and_when_to_retry(
    page: Page, bare_server: DevServer
) -> None:
    open_demo(page, bare_server.demo_url, sdk=False)
    page.fill("#user-id", "eager-user")  # the bare server allows one token per user an hour
    assert request_token(page).status == 201
    assert request_token(page).status == 429
    expect(page.locator("#problem-status")).to_have_text("429")
    expect(page.locator("#problem-retry")).to_contain_text(re.compile(r"^\d+ s$"))
