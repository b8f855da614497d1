"""Which client a request comes from: the peer, or the one header trusted proxies write."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from token_service.http.client_ip import (
    ProxyHeader,
    RawHeaders,
    client_address,
    limit_subject,
    scope_address,
)

PROXIES = (ip_network("10.0.0.0/8"),)
PROXY = "10.1.2.3"
XFF = ProxyHeader.X_FORWARDED_FOR
FORWARDED = ProxyHeader.FORWARDED
REAL_IP = ProxyHeader.X_REAL_IP


def lines(*pairs: tuple[str, str]) -> RawHeaders:
    """Header lines as the ASGI scope holds them, in order, repeats kept."""
    return [(name.lower().encode(), value.encode("latin-1")) for name, value in pairs]


def behind_proxy(header: ProxyHeader, *pairs: tuple[str, str]) -> str | None:
    address = client_address(PROXY, lines(*pairs), PROXIES, header)
    return str(address) if address is not None else None


def test_the_socket_peer_is_the_client_without_proxies() -> None:
    assert client_address("198.51.100.7", [], ()) == ip_address("198.51.100.7")


@pytest.mark.parametrize("header", list(ProxyHeader))
def test_every_forwarding_header_from_an_untrusted_peer_is_ignored(header: ProxyHeader) -> None:
    headers = lines(
        ("X-Forwarded-For", "203.0.113.9"),
        ("Forwarded", "for=203.0.113.9"),
        ("X-Real-IP", "203.0.113.9"),
    )
    assert client_address("198.51.100.7", headers, PROXIES, header) == ip_address("198.51.100.7")


def test_forwarded_for_from_a_trusted_proxy_names_the_client() -> None:
    assert behind_proxy(XFF, ("X-Forwarded-For", "203.0.113.9")) == "203.0.113.9"


def test_the_rightmost_untrusted_hop_wins_over_a_spoofed_leftmost_one() -> None:
    chain = ("X-Forwarded-For", "1.2.3.4, 203.0.113.9, 10.9.9.9")
    assert behind_proxy(XFF, chain) == "203.0.113.9"


def test_a_client_line_before_the_proxys_line_is_joined_not_believed() -> None:
    """RFC 9110 5.3: repeated lines are one list, in order; the proxy's hop is the last."""
    spoofed = behind_proxy(XFF, ("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-For", "203.0.113.9"))
    assert spoofed == "203.0.113.9"


def test_a_forwarded_header_is_not_believed_when_the_proxy_writes_x_forwarded_for() -> None:
    """ALB and nginx pass a client's `Forwarded` on untouched."""
    headers = (("Forwarded", "for=1.2.3.4"), ("X-Forwarded-For", "203.0.113.9"))
    assert behind_proxy(XFF, *headers) == "203.0.113.9"


def test_x_forwarded_for_is_not_believed_when_the_proxy_writes_forwarded() -> None:
    headers = (("X-Forwarded-For", "1.2.3.4"), ("Forwarded", "for=203.0.113.9"))
    assert behind_proxy(FORWARDED, *headers) == "203.0.113.9"


def test_without_the_configured_header_the_peer_is_the_client() -> None:
    assert behind_proxy(FORWARDED, ("X-Forwarded-For", "203.0.113.9")) == PROXY


def test_when_every_hop_is_trusted_the_leftmost_is_the_client() -> None:
    assert behind_proxy(XFF, ("X-Forwarded-For", "10.0.0.1, 10.0.0.2")) == "10.0.0.1"


@pytest.mark.parametrize(
    ("value", "client"),
    [
        pytest.param("203.0.113.9:4711", "203.0.113.9", id="ipv4 with a port"),
        pytest.param("2001:db8::1", "2001:db8::1", id="bare ipv6"),
        pytest.param("[2001:db8::1]:4711", "2001:db8::1", id="bracketed ipv6 with a port"),
        pytest.param("[2001:db8::1]", "2001:db8::1", id="bracketed ipv6"),
        pytest.param("::ffff:203.0.113.9", "203.0.113.9", id="ipv4-mapped ipv6"),
        pytest.param("203.0.113.9,,", "203.0.113.9", id="empty elements"),
    ],
)
def test_x_forwarded_for_hop_spellings(value: str, client: str) -> None:
    assert behind_proxy(XFF, ("X-Forwarded-For", value)) == client


@pytest.mark.parametrize(
    ("value", "client"),
    [
        pytest.param("for=203.0.113.9", "203.0.113.9", id="token"),
        pytest.param('for="203.0.113.9:4711"', "203.0.113.9", id="ipv4 with a port"),
        pytest.param('for="[2001:db8::1]:4711"', "2001:db8::1", id="ipv6 with a port"),
        pytest.param('for="[2001:db8::1]"', "2001:db8::1", id="ipv6"),
        pytest.param('For="[2001:db8::1]:_p1"', "2001:db8::1", id="obfuscated port"),
        pytest.param(
            'for=203.0.113.9;proto=https;by="[2001:db8::9]", for=10.2.2.2',
            "203.0.113.9",
            id="other parameters and a trusted hop",
        ),
        pytest.param(
            'for=1.2.3.4;host="a,b;c", for=203.0.113.9',
            "203.0.113.9",
            id="separators inside a quoted string",
        ),
        pytest.param('for="\\203.0.113.9"', "203.0.113.9", id="quoted pair"),
    ],
)
def test_forwarded_hop_spellings(value: str, client: str) -> None:
    assert behind_proxy(FORWARDED, ("Forwarded", value)) == client


def test_forwarded_lines_are_joined_in_order() -> None:
    headers = (("Forwarded", "for=1.2.3.4"), ("Forwarded", "for=203.0.113.9"))
    assert behind_proxy(FORWARDED, *headers) == "203.0.113.9"


def test_an_unclosed_quote_cannot_swallow_the_proxys_own_line() -> None:
    headers = (("Forwarded", 'for="1.2.3.4'), ("Forwarded", "for=203.0.113.9"))
    assert behind_proxy(FORWARDED, *headers) == "203.0.113.9"


UNUSABLE_XFF = [
    "not-an-ip",
    "unknown",
    "_hidden",
    "203.0.113.9:http",
    "2001:db8::1%eth0",
    "1.2.3",
    "1" * 4000,  # longer than any address text
]


@pytest.mark.parametrize("hop", UNUSABLE_XFF)
def test_an_unusable_x_forwarded_for_hop_stops_the_walk_at_the_proxy_that_wrote_it(
    hop: str,
) -> None:
    """Nothing left of it is believed: the nearest trusted address is the client."""
    chain = ("X-Forwarded-For", f"203.0.113.9, {hop}, 10.9.9.9")
    assert behind_proxy(XFF, chain) == "10.9.9.9"


UNUSABLE_FORWARDED = [
    "for=unknown",
    "for=_hidden",
    'for="_hidden:4711"',
    'for="2001:db8::1"',  # RFC 7239 6: IPv6 is bracketed
    "for=[2001:db8::1",
    "proto=https",  # no for= at all
    "for=203.0.113.8;for=203.0.113.7",  # a parameter twice (RFC 7239 4)
    'for="203.0.113.9',  # unclosed quote
    "for",
]


@pytest.mark.parametrize("element", UNUSABLE_FORWARDED)
def test_an_unusable_forwarded_element_stops_the_walk_at_the_proxy_that_wrote_it(
    element: str,
) -> None:
    assert behind_proxy(FORWARDED, ("Forwarded", f"for=203.0.113.1, {element}")) == PROXY


def test_an_unusable_client_entry_left_of_the_proxys_hop_is_never_reached() -> None:
    assert behind_proxy(XFF, ("X-Forwarded-For", "garbage, 203.0.113.9")) == "203.0.113.9"


def test_x_real_ip_is_the_proxys_one_word() -> None:
    assert behind_proxy(REAL_IP, ("X-Real-IP", "203.0.113.9")) == "203.0.113.9"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param((("X-Real-IP", "1.2.3.4"), ("X-Real-IP", "203.0.113.9")), id="two lines"),
        pytest.param((("X-Real-IP", "1.2.3.4, 203.0.113.9"),), id="a list"),
        pytest.param((("X-Real-IP", "unknown"),), id="no address"),
    ],
)
def test_x_real_ip_that_is_not_one_address_leaves_the_peer(
    headers: tuple[tuple[str, str], ...],
) -> None:
    assert behind_proxy(REAL_IP, *headers) == PROXY


def test_ipv4_mapped_ipv6_peer_counts_as_ipv4() -> None:
    assert client_address("::ffff:198.51.100.7", [], ()) == ip_address("198.51.100.7")


def test_ipv6_clients_are_grouped_by_their_64_prefix() -> None:
    a = limit_subject(ip_address("2001:db8:1:2::1"))
    b = limit_subject(ip_address("2001:db8:1:2:ffff:ffff:ffff:ffff"))
    c = limit_subject(ip_address("2001:db8:1:3::1"))
    assert a == b == "2001:db8:1:2::/64"
    assert c != a


def test_ipv4_clients_are_counted_by_address() -> None:
    assert limit_subject(ip_address("198.51.100.7")) == "198.51.100.7"


def test_a_scope_is_read_for_its_peer_and_header_lines() -> None:
    headers = lines(("X-Forwarded-For", "198.51.100.7"))
    scope = {"client": (PROXY, 4711), "headers": headers}
    assert scope_address(scope, PROXIES, XFF) == ip_address("198.51.100.7")
    assert scope_address({"client": None, "headers": headers}, PROXIES, XFF) is None
