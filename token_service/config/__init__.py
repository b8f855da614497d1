"""Configuration: settings grouped in dataclasses (`settings`), read and validated from the
environment with every problem reported at once (`env`), secrets that never print
themselves (`secrets`), and `.env` files (`dotenv`). Config imports the features' own enums
and limits; no feature imports config.
"""

from token_service.config.dotenv import read_dotenv
from token_service.config.env import PREFIX, check_can_serve, load_settings
from token_service.config.secrets import Secret
from token_service.config.settings import AuthSettings, ServerSettings, Settings

__all__ = [
    "PREFIX",
    "AuthSettings",
    "Secret",
    "ServerSettings",
    "Settings",
    "check_can_serve",
    "load_settings",
    "read_dotenv",
]
