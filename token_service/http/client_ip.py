"""Which client a request comes from, for the per-IP limit and the audit record.

The socket peer, unless the peer is a configured trusted proxy. Then the one header the
operator says the proxy writes (`ProxyHeader`) is read, and no other: a header the proxy
only passes through is the client's own words (ALB and nginx pass `Forwarded` on
untouched when they write `X-Forwarded-For`). Headers from anyone else are ignored, since
any client can send them.

The header is read from the ASGI scope's raw header lines, every line of it, joined in
order as RFC 9110 (5.3) combines repeated field lines: a client may send its own
`X-Forwarded-For` line ahead of the one its proxy adds, and reading only the first line
would believe the client. The list is then walked from the right, the hop nearest to
us first: addresses of trusted proxies are skipped, and the first one that is not trusted
is the client (if every one is trusted, the left-most). An entry that is no address
(`unknown`, an obfuscated `Forwarded` identifier, garbage) stops the walk: the nearest
address we could trust, the trusted proxy that wrote it, is then the client, rather than
anything read past it. Such entries only matter when a trusted proxy wrote them; a
client's own garbage sits left of the address its proxy appends and is never reached.

IPv6 clients are grouped by /64, the block one subscriber usually holds, so a single
host cannot dodge the limit by walking its own prefix.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address
#: The ASGI scope's `headers`: (lower-case name, value) byte pairs, every line as sent.
RawHeaders = Iterable[tuple[bytes, bytes]]


class ProxyHeader(enum.StrEnum):
    """The header the trusted proxies write, the only one believed from them."""

    #: `X-Forwarded-For: client, proxy1, ...`: ALB, nginx's `$proxy_add_x_forwarded_for`,
    #: Envoy, HAProxy's `option forwardfor`, most CDNs.
    X_FORWARDED_FOR = "x-forwarded-for"
    #: RFC 7239 `Forwarded: for=client, for=proxy1`.
    FORWARDED = "forwarded"
    #: One address the proxy sets, replacing any the client sent (nginx's
    #: `proxy_set_header X-Real-IP $remote_addr`): no list, no walk.
    X_REAL_IP = "x-real-ip"


#: An optional port after a node: digits, or an RFC 7239 obfuscated port (`_abc`).
_PORT = re.compile(r":(?:[0-9]{1,5}|_[A-Za-z0-9._-]+)")
_QUOTED_PAIR = re.compile(r"\\(.)")


def _normalized(address: Address) -> Address | None:
    if isinstance(address, IPv6Address):
        if address.scope_id is not None:
            return None  # a zone (`fe80::1%eth0`) is local to a host, never a client's
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
    return address


#: The longest text of an IP address this module takes (an IPv6 address with an IPv4
#: tail: `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`); a zone would be refused anyway.
_MAX_ADDRESS_CHARS = 45


def _parse(text: str) -> Address | None:
    text = text.strip()
    # Longer is no address, and is not remembered: a header entry is the client's text.
    return None if len(text) > _MAX_ADDRESS_CHARS else _parse_address(text)


# Remembered (bounded, and each key short): a deployment sees the same few peers (its load
# balancers) and its clients' addresses again and again, and ipaddress parses in Python.
@functools.lru_cache(maxsize=4096)
def _parse_address(text: str) -> Address | None:
    try:
        address = ip_address(text)
    except ValueError:
        return None
    return _normalized(address)


def _node(text: str, *, bare_ipv6: bool) -> Address | None:
    """The address of one hop: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`,
    `[2001:db8::1]:4711`, and a bare `2001:db8::1` where the header allows it (the only
    form with colons that has no port). None for anything else: `unknown`, `_hidden`,
    garbage."""
    text = text.strip()
    if text.startswith("["):
        host, bracket, port = text[1:].partition("]")
        if not bracket or (port and not _PORT.fullmatch(port)):
            return None
        # Only an IPv6 address is bracketed (its text always has a colon).
        return _parse(host) if ":" in host else None
    if text.count(":") == 1:
        host, port = text.split(":")
        address = _parse(host) if _PORT.fullmatch(":" + port) else None
        return address if isinstance(address, IPv4Address) else None
    if ":" in text and not bare_ipv6:
        return None
    return _parse(text)


def _lines(headers: RawHeaders, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in headers if key == name]


def _forwarded_for_chain(lines: Sequence[str]) -> list[Address | None]:
    """Every hop of `X-Forwarded-For`, left to right; None where one is no address."""
    parts = (part.strip() for line in lines for part in line.split(","))
    # RFC 9110 5.6.1: empty list elements are allowed and mean nothing.
    return [_node(part, bare_ipv6=True) for part in parts if part]


def _split_forwarded(line: str) -> list[list[str]]:
    """One `Forwarded` line as its elements (split on `,`), each as its raw pairs (split
    on `;`), commas and semicolons inside quoted strings kept. An unclosed quote makes its
    element a single unusable pair."""
    elements: list[list[str]] = []
    pairs: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in line:
        if quoted:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
            current.append(char)
        elif char in ";,":
            pairs.append("".join(current))
            current = []
            if char == ",":
                elements.append(pairs)
                pairs = []
        else:
            current.append(char)
    pairs.append("".join(current))
    if quoted:
        pairs = ['"unclosed']
    elements.append(pairs)
    return elements


def _forwarded_node(pairs: Sequence[str]) -> Address | None:
    """The `for=` address of one `Forwarded` element: None if it has none, has two, or
    names no address (RFC 7239 6: `unknown`, an obfuscated `_name`, IPv6 without brackets)."""
    nodes: list[str] = []
    for pair in pairs:
        name, equals, value = pair.strip().partition("=")
        if name.strip().lower() != "for":
            continue
        value = value.strip()
        if not equals:
            return None
        if value.startswith('"'):
            if len(value) < 2 or not value.endswith('"'):
                return None
            value = _QUOTED_PAIR.sub(r"\1", value[1:-1])
        nodes.append(value)
    return _node(nodes[0], bare_ipv6=False) if len(nodes) == 1 else None


def _forwarded_chain(lines: Sequence[str]) -> list[Address | None]:
    """Every hop of `Forwarded`, left to right. Each line is split on its own, then the
    lists are joined (the same list as joining the lines first, when every line is well
    formed; a quote left open in one line cannot swallow the lines after it)."""
    chain: list[Address | None] = []
    for line in lines:
        for pairs in _split_forwarded(line):
            if any(pair.strip() for pair in pairs):  # empty elements mean nothing
                chain.append(_forwarded_node(pairs))
    return chain


def _chain(headers: RawHeaders, header: ProxyHeader) -> list[Address | None]:
    lines = _lines(headers, header.value.encode())
    if header is ProxyHeader.FORWARDED:
        return _forwarded_chain(lines)
    if header is ProxyHeader.X_FORWARDED_FOR:
        return _forwarded_for_chain(lines)
    # X-Real-IP holds one address: several lines or a list is not what the proxy wrote.
    if len(lines) != 1 or "," in lines[0]:
        return [None] if lines else []
    return [_node(lines[0], bare_ipv6=True)]


def client_address(
    peer: str | None,
    headers: RawHeaders,
    trusted_proxies: Sequence[Network],
    header: ProxyHeader = ProxyHeader.X_FORWARDED_FOR,
) -> Address | None:
    """The client's address: the socket `peer`, or, when it is a trusted proxy, what that
    proxy's `header` says (walked from the right, see the module's docstring)."""
    address = _parse(peer) if peer else None
    if address is None or not _trusted(address, trusted_proxies):
        return address
    chain = _chain(headers, header)
    if header is ProxyHeader.X_REAL_IP:
        # The proxy's one word, not a list: nothing to walk.
        written = chain[0] if chain else None
        return written if written is not None else address
    for hop in reversed(chain):
        if hop is None:
            return address  # an unusable hop: the trusted proxy that wrote it
        address = hop
        if not _trusted(hop, trusted_proxies):
            return hop
    return address


def scope_address(
    scope: Mapping[str, Any],
    trusted_proxies: Sequence[Network],
    header: ProxyHeader = ProxyHeader.X_FORWARDED_FOR,
) -> Address | None:
    """`client_address` of an ASGI scope: its `client` peer and its raw `headers` lines.
    The one place the token route, the guards and the access log read them from."""
    client = scope.get("client")
    return client_address(client[0] if client else None, scope["headers"], trusted_proxies, header)


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address in network for network in proxies)


# Both remembered: ipaddress formats an address anew on every call, in Python.
@functools.lru_cache(maxsize=4096)
def address_text(address: Address) -> str:
    """`str(address)`: the client IP as logs and the mapping record write it."""
    return str(address)


@functools.lru_cache(maxsize=4096)
def limit_subject(address: Address | None) -> str:
    """The key the per-IP limit counts under: the IPv4 address, or the IPv6 /64."""
    if address is None:
        return "unknown"
    if isinstance(address, IPv6Address):
        return str(IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)
