"""The demo page: `GET /demo`, where a frontend developer tries the service in a browser.

The page (plain HTML and JavaScript in `token_service/http/web/`, no build step of its own)
asks for a participant token through the real `POST /v1/participant-tokens` with the
project's web client (`clients/web`, served as the committed `ivs-token-client.js`),
exactly as a frontend would, refreshes it through the exchange route, shows what came
back, and lets the real IVS web broadcast SDK (`amazon-ivs-web-broadcast`, installed by
`make web-sdk`) construct a `Stage` from each token.

Routes exist only when the demo is on (`TOKEN_SERVICE_DEMO_PAGE`, on by default with
`serve --dev`). `POST /demo/user-token`, which mints app-user JWTs for demo users, is
DEVELOPMENT ONLY: it exists only under `serve --dev` with a shared secret, answers
loopback callers only, and is never part of the API's contract or OpenAPI document.
Elsewhere the page asks the developer to paste an app-user JWT instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody
from litestar.response import File

from token_service.errors import NotFound, PermissionDenied
from token_service.http.strict_body import strict_json

#: Where `npm` puts the SDK's browser bundle (UMD, global `IVSBroadcastClient`) under
#: `TOKEN_SERVICE_WEB_SDK_DIR`.
SDK_BUNDLE = Path("node_modules/amazon-ivs-web-broadcast/dist/amazon-ivs-web-broadcast.js")
SDK_URL = "/demo/sdk/amazon-ivs-web-broadcast.js"
#: The page calls the real endpoint, the one a frontend calls.
PARTICIPANT_TOKENS_PATH = "/v1/participant-tokens"
#: Demo app-user JWTs live one hour: long enough to try things, short if one leaks.
USER_TOKEN_TTL_SECONDS = 3600
#: The web client (`clients/web`, `@ivs-token-service/web`) as the page imports it: its
#: built ES module, copied here by `npm run build:demo` so that the wheel carries it;
#: tests/packaging/test_web_client_demo_asset.py fails while it differs from a fresh build.
CLIENT_ASSET = "ivs-token-client.js"
#: The page's static files, by the name it asks for and its media type.
ASSETS = {"demo.js": "text/javascript", "demo.css": "text/css", CLIENT_ASSET: "text/javascript"}
#: The SDK needs its own script and may call AWS for analytics and configuration.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' http: https: ws: wss:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

ROLE = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class DemoUserBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Which demo user to mint an app-user JWT for."""

    sub: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    roles: Annotated[list[ROLE], msgspec.Meta(max_length=16)] = msgspec.field(default_factory=list)


class DemoUserToken(msgspec.Struct, rename="camel", kw_only=True):
    token: str
    sub: str
    roles: list[str]
    expires_in: int


class DemoPreset(msgspec.Struct, kw_only=True):
    label: str
    sub: str
    roles: list[str]
    capabilities: list[str]


class DemoSdk(msgspec.Struct, kw_only=True):
    available: bool
    url: str | None
    hint: str | None


class DemoConfig(msgspec.Struct, rename="camel", kw_only=True):
    dev: bool
    stage_arn: str | None
    mint_user_tokens: bool
    token_endpoint: str
    presets: list[DemoPreset]
    sdk: DemoSdk


#: Users of the default policy: `publisher` may publish, everyone may subscribe.
PRESETS = [
    DemoPreset(
        label="Publisher",
        sub="demo-user",
        roles=["publisher"],
        capabilities=["PUBLISH", "SUBSCRIBE"],
    ),
    DemoPreset(label="Viewer", sub="demo-viewer", roles=[], capabilities=["SUBSCRIBE"]),
    DemoPreset(
        label="Viewer asking to publish (403)",
        sub="demo-viewer",
        roles=[],
        capabilities=["PUBLISH", "SUBSCRIBE"],
    ),
]


#: Mints an app-user JWT for (sub, roles, lifetime in seconds), as the app's own login would.
UserTokenMinter = Callable[[str, Sequence[str], int], str]


@dataclass(frozen=True)
class DemoSettings:
    """What the demo page needs to know, given by the composition root."""

    enabled: bool
    #: Under `serve --dev`.
    dev: bool
    stage_arn: str | None
    #: Where `make web-sdk` installs the IVS web broadcast SDK.
    web_sdk_dir: Path
    #: Set only when the service verifies shared-secret JWTs; used only under `serve --dev`.
    mint_user_token: UserTokenMinter | None = None


#: The key of `DemoSettings` in the app's state.
DEMO_STATE_KEY = "demo"


def _demo(request: Request[Any, Any, Any]) -> DemoSettings:
    demo: DemoSettings = request.app.state[DEMO_STATE_KEY]
    return demo


def can_mint_user_tokens(demo: DemoSettings) -> bool:
    """Only a development server with a shared secret hands out demo app-user JWTs."""
    return demo.enabled and demo.dev and demo.mint_user_token is not None


def sdk_bundle(demo: DemoSettings) -> Path | None:
    path = demo.web_sdk_dir / SDK_BUNDLE
    return path if path.is_file() else None


def _asset(name: str) -> bytes:
    return (resources.files("token_service.http") / "web" / name).read_bytes()


@get("/demo", include_in_schema=False, media_type="text/html")
async def demo_page() -> Response[bytes]:
    return Response(_asset("demo.html"), headers=_PAGE_HEADERS)


@get("/demo/assets/{name:str}", include_in_schema=False)
async def demo_asset(name: FromPath[str]) -> Response[bytes]:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"no demo asset named {name!r}")
    return Response(_asset(name), media_type=media_type, headers=_PAGE_HEADERS)


@get("/demo/config.json", include_in_schema=False)
async def demo_config(request: Request[Any, Any, Any]) -> Response[DemoConfig]:
    demo = _demo(request)
    bundle = sdk_bundle(demo)
    sdk = DemoSdk(
        available=bundle is not None,
        url=SDK_URL if bundle is not None else None,
        hint=None if bundle is not None else "run `make web-sdk`, then reload this page",
    )
    config = DemoConfig(
        dev=demo.dev,
        stage_arn=demo.stage_arn,
        mint_user_tokens=can_mint_user_tokens(demo),
        token_endpoint=PARTICIPANT_TOKENS_PATH,
        presets=PRESETS,
        sdk=sdk,
    )
    return Response(config, headers={"Cache-Control": "no-store"})


@get(SDK_URL, include_in_schema=False)
async def demo_sdk(request: Request[Any, Any, Any]) -> File:
    bundle = sdk_bundle(_demo(request))
    if bundle is None:
        raise NotFound("the IVS web broadcast SDK is not installed here: run `make web-sdk`")
    return File(
        bundle,
        content_disposition_type="inline",
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ip_address(host).is_loopback
    except ValueError:
        return False


@post(
    "/demo/user-token",
    include_in_schema=False,
    status_code=201,
    before_request=strict_json(DemoUserBody),
)
async def demo_user_token(
    request: Request[Any, Any, Any], data: JSONBody[DemoUserBody]
) -> Response[DemoUserToken]:
    """DEVELOPMENT ONLY: an app-user JWT for a demo user, as the app's own login would give."""
    if not _is_loopback(request.client.host if request.client else None):
        # Minting JWTs is the shared secret's power: never offer it beyond this machine.
        raise PermissionDenied("demo user tokens are minted for loopback callers only")
    mint = _demo(request).mint_user_token
    if mint is None:  # the route is only registered with one; kept for the type checker
        raise NotFound("no shared secret configured")
    token = mint(data.sub, data.roles, USER_TOKEN_TTL_SECONDS)
    body = DemoUserToken(
        token=token, sub=data.sub, roles=list(data.roles), expires_in=USER_TOKEN_TTL_SECONDS
    )
    return Response(body, status_code=201, headers={"Cache-Control": "no-store"})


def demo_route_handlers(demo: DemoSettings) -> list[HTTPRouteHandler]:
    """The demo's routes for this configuration: none when the demo is off."""
    if not demo.enabled:
        return []
    handlers = [demo_page, demo_asset, demo_config, demo_sdk]
    if can_mint_user_tokens(demo):
        handlers.append(demo_user_token)
    return handlers
