"""Who is calling: app-user JWTs (an HS256 shared secret, or an OIDC provider's keys
fetched through an async JWKS cache) and the admin bearer tokens.

Every credential problem raises `AuthenticationFailed` with a specific detail that
never contains the credential; bad constructor arguments raise `ConfigurationError`.
Nothing here does any work at import time.

Modules: `bearer` (header parsing, admin tokens), `shared_secret` (HS256 verify and
mint), `jwks` (the key cache), `oidc`, `composite` (the interface and the router),
`_common` (checks all JWT verifiers share).
"""

from token_service.auth._common import MAX_LEEWAY_SECONDS, MAX_TOKEN_CHARS
from token_service.auth.bearer import MIN_ADMIN_TOKEN_CHARS, AdminTokens, parse_bearer
from token_service.auth.composite import Authenticator, CompositeAuthenticator
from token_service.auth.jwks import JwksCache, insecure_url_problem
from token_service.auth.oidc import OidcAuthenticator
from token_service.auth.shared_secret import (
    MIN_SECRET_BYTES,
    SharedSecretAuthenticator,
    mint_user_token,
)

__all__ = [
    "MAX_LEEWAY_SECONDS",
    "MAX_TOKEN_CHARS",
    "MIN_ADMIN_TOKEN_CHARS",
    "MIN_SECRET_BYTES",
    "AdminTokens",
    "Authenticator",
    "CompositeAuthenticator",
    "JwksCache",
    "OidcAuthenticator",
    "SharedSecretAuthenticator",
    "insecure_url_problem",
    "mint_user_token",
    "parse_bearer",
]
