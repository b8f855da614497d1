"""Every environment variable the service reads, taken from config/env.py's own reads.

Deployment files and docs/configuration.md are checked against this list, so a misspelt name in
a ConfigMap (silently ignored at run time) or an undocumented new setting fails a test.
"""

from __future__ import annotations

import re
from pathlib import Path

from token_service.config import PREFIX

CONFIG = Path(__file__).resolve().parents[2] / "token_service" / "config" / "env.py"
_READ = re.compile(r"\br\.(raw|secret|convert|integer|number|choice)\(\s*\"([A-Z0-9_]+)\"")
#: Read by the entry point, not by config/env.py.
_ENTRY_POINT = {"TOKEN_SERVICE_ENV_FILE"}


def service_variables() -> dict[str, bool]:
    """`TOKEN_SERVICE_*` name -> whether it is a secret (then `<name>_FILE` works too)."""
    found: dict[str, bool] = dict.fromkeys(_ENTRY_POINT, False)
    for method, name in _READ.findall(CONFIG.read_text(encoding="utf-8")):
        found[PREFIX + name] = found.get(PREFIX + name, False) or method == "secret"
    return found


def accepted_names() -> set[str]:
    names = set(service_variables())
    names |= {f"{name}_FILE" for name, secret in service_variables().items() if secret}
    return names
