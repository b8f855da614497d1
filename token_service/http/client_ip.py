"""Which client a request comes from, for the per-IP limit and the audit record.

The socket peer, unless the peer is a configured trusted proxy: then the
right-most address in `X-Forwarded-For` (or `Forwarded: for=`) that is not itself a
trusted proxy. Headers from anyone else are ignored, since any client can send them.
IPv6 clients are grouped by /64, the block one subscriber usually holds, so a single
host cannot dodge the limit by walking its own prefix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

Network = IPv4Network | IPv6Network
_FORWARDED_FOR = re.compile(r'for\s*=\s*"?\[?([^\]";,]+)\]?(?::\d+)?"?', re.IGNORECASE)


def _parse(text: str) -> IPv4Address | IPv6Address | None:
    try:
        address = ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPv4Address | IPv6Address, proxies: Sequence[Network]) -> bool:
    return any(address in network for network in proxies)


def _forwarded_chain(headers: dict[str, str]) -> list[str]:
    forwarded = headers.get("forwarded")
    if forwarded:
        return _FORWARDED_FOR.findall(forwarded)
    xff = headers.get("x-forwarded-for")
    if xff:
        return [part.strip() for part in xff.split(",") if part.strip()]
    return []


def client_address(
    peer: str | None, headers: dict[str, str], trusted_proxies: Sequence[Network]
) -> IPv4Address | IPv6Address | None:
    address = _parse(peer) if peer else None
    if address is None or not _trusted(address, trusted_proxies):
        return address
    for hop in reversed(_forwarded_chain(headers)):
        hop_address = _parse(hop)
        if hop_address is None:
            # A garbled hop: stop believing the chain here rather than guess.
            return address
        address = hop_address
        if not _trusted(hop_address, trusted_proxies):
            return hop_address
    return address


def limit_subject(address: IPv4Address | IPv6Address | None) -> str:
    """The key the per-IP limit counts under: the IPv4 address, or the IPv6 /64."""
    if address is None:
        return "unknown"
    if isinstance(address, IPv6Address):
        return str(IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)
