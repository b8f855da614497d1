"""The service's OpenAPI document, as the app serves it at /schema/openapi.json, without a
network or a running server.

    python -m tools.openapi                  # the document on stdout (JSON)
    python -m tools.openapi --output FILE    # or into FILE

Run it from the repository's root with `-m`, so the code of this checkout is the one that
builds the document. The web client (clients/web, `npm run generate`) generates its
TypeScript types from it; tests/packaging/test_web_client_types.py fails when they are stale.

The app is built (the composition root, `create_app`) but never started: no adapter is
connected, so the settings only need to be valid, never reachable.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any


def document() -> dict[str, Any]:
    """The OpenAPI document of this checkout's app, as a JSON-ready dict."""
    from token_service.bootstrap.app import create_app
    from token_service.config import load_settings

    # Start-up warnings (no Redis configured, say) are about serving, which this never does.
    logging.disable(logging.WARNING)
    try:
        with tempfile.TemporaryDirectory(prefix="token-service-openapi-") as keys_dir:
            settings = load_settings(
                {
                    # Never called: the document is built without starting the app.
                    "TOKEN_SERVICE_IVS_ENDPOINT_URL": "http://127.0.0.1:9",
                    "TOKEN_SERVICE_AWS_REGION": "us-east-1",
                    "TOKEN_SERVICE_KEYS_DIR": keys_dir,
                    "TOKEN_SERVICE_AUTH_SHARED_SECRET": secrets.token_urlsafe(48),
                    "TOKEN_SERVICE_ADMIN_TOKENS": "openapi-" + secrets.token_urlsafe(24),
                }
            )
            schema: dict[str, Any] = create_app(settings).openapi_schema.to_schema()
    finally:
        logging.disable(logging.NOTSET)
    return schema


def render(schema: dict[str, Any]) -> str:
    """The document as the tool writes it: indented JSON, keys in the app's order."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.openapi", description=__doc__)
    parser.add_argument("--output", type=Path, help="write the document here, not to stdout")
    args = parser.parse_args(argv)
    text = render(document())
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
