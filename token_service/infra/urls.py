"""Whether a URL's traffic crosses a network in clear: a plain scheme to a host that is not
this machine's loopback. Settings that carry keys or credentials use it to refuse or warn."""

from __future__ import annotations

from ipaddress import IPv6Address, ip_address
from urllib.parse import urlsplit


def is_loopback_host(host: str | None) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1 (an IPv4-mapped loopback too): traffic that never
    leaves the machine. A name other than `localhost` may resolve anywhere, so it is not."""
    if not host:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        address = ip_address(host)
    except ValueError:
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def in_clear_to_remote(url: str, clear_schemes: frozenset[str]) -> bool:
    """Whether `url` uses one of `clear_schemes` (no TLS) to a host that is not loopback."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False  # malformed: refused by the settings' own checks, not here
    return parts.scheme.lower() in clear_schemes and not is_loopback_host(parts.hostname)
