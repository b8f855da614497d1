"""The environment the commands read: the process's, over a `.env` file when one exists.

Only the entry points (the commands and the workers' factory) read it; everything below
them receives `Settings`.
"""

from __future__ import annotations

import os
from pathlib import Path

from token_service.config import read_dotenv


def environment() -> dict[str, str]:
    """The process environment, over a `.env` file when one exists (the environment wins)."""
    dotenv_path = Path(os.environ.get("TOKEN_SERVICE_ENV_FILE", ".env"))
    values = read_dotenv(dotenv_path) if dotenv_path.is_file() else {}
    values.update(os.environ)
    return values
