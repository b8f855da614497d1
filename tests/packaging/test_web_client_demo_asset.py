"""The web client the demo page imports (token_service/http/web/ivs-token-client.js, in the
wheel) is the client's source as built now: an edit of clients/web/src without
`npm run build:demo` in clients/web fails here.

The build is the client's own tsc (`npm ci` in clients/web, which `make test` runs first)
with its tsconfig.json, into a scratch directory.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.tools import needs_tool
from token_service.http.routes.demo import CLIENT_ASSET

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "clients" / "web"
TSC = WEB / "node_modules" / ".bin" / "tsc"
SERVED = ROOT / "token_service" / "http" / "web" / CLIENT_ASSET

pytestmark = needs_tool(str(TSC), "builds the web client: `npm ci` in clients/web")


def test_the_demo_serves_the_client_as_built_from_its_source(tmp_path: Path) -> None:
    subprocess.run(
        [str(TSC), "-p", "tsconfig.json", "--outDir", str(tmp_path)],
        cwd=WEB,
        check=True,
        timeout=120,
    )
    built = (tmp_path / "index.js").read_text(encoding="utf-8")
    assert built == SERVED.read_text(encoding="utf-8"), (
        f"token_service/http/web/{CLIENT_ASSET} is stale: run `npm run build:demo` in clients/web"
    )
