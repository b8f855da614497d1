"""The web client's generated types (clients/web/src/generated/openapi.ts) are what
openapi-typescript makes of the service's OpenAPI document as it is now: a change of the
API without `npm run generate` in clients/web fails here.

The generator is the client's own script and its pinned openapi-typescript (`npm ci` in
clients/web, which `make test` runs first); the document comes from `tools.openapi`, the
app as built by this checkout.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.tools import needs_tool
from tools.openapi import document, render

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "clients" / "web"
GENERATED = WEB / "src" / "generated" / "openapi.ts"
OPENAPI_TYPESCRIPT = WEB / "node_modules" / ".bin" / "openapi-typescript"

pytestmark = [
    needs_tool("node", "runs the web client's generator"),
    needs_tool(str(OPENAPI_TYPESCRIPT), "the web client's generator: `npm ci` in clients/web"),
]


def test_the_committed_types_are_generated_from_the_current_document(tmp_path: Path) -> None:
    source = tmp_path / "openapi.json"
    source.write_text(render(document()), encoding="utf-8")
    fresh = tmp_path / "openapi.ts"
    subprocess.run(
        ["node", "scripts/generate.mjs", "--document", str(source), "--output", str(fresh)],
        cwd=WEB,
        check=True,
        timeout=60,
    )
    assert fresh.read_text(encoding="utf-8") == GENERATED.read_text(encoding="utf-8"), (
        "clients/web/src/generated/openapi.ts is stale: run `npm run generate` in clients/web"
    )
