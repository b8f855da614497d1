"""Which client a request comes from: the peer, or forwarding headers from trusted proxies."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

from token_service.http.client_ip import client_address, limit_subject

PROXIES = (ip_network("10.0.0.0/8"),)


def test_the_socket_peer_is_the_client_without_proxies() -> None:
    assert client_address("198.51.100.7", {}, ()) == ip_address("198.51.100.7")


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    headers = {"x-forwarded-for": "203.0.113.9"}
    assert client_address("198.51.100.7", headers, PROXIES) == ip_address("198.51.100.7")


def test_forwarded_for_from_a_trusted_proxy_names_the_client() -> None:
    headers = {"x-forwarded-for": "203.0.113.9"}
    assert client_address("10.1.2.3", headers, PROXIES) == ip_address("203.0.113.9")


def test_the_rightmost_untrusted_hop_wins_over_a_spoofed_leftmost_one() -> None:
    headers = {"x-forwarded-for": "1.2.3.4, 203.0.113.9, 10.9.9.9"}
    assert client_address("10.1.2.3", headers, PROXIES) == ip_address("203.0.113.9")


def test_rfc7239_forwarded_header_is_understood() -> None:
    headers = {"forwarded": 'for="[2001:db8::1]:4711";proto=https, for=10.2.2.2'}
    assert client_address("10.1.2.3", headers, PROXIES) == ip_address("2001:db8::1")


def test_a_garbled_hop_stops_the_chain_at_the_last_trusted_address() -> None:
    headers = {"x-forwarded-for": "not-an-ip"}
    assert client_address("10.1.2.3", headers, PROXIES) == ip_address("10.1.2.3")


def test_ipv4_mapped_ipv6_peer_counts_as_ipv4() -> None:
    assert client_address("::ffff:198.51.100.7", {}, ()) == ip_address("198.51.100.7")


def test_ipv6_clients_are_grouped_by_their_64_prefix() -> None:
    a = limit_subject(ip_address("2001:db8:1:2::1"))
    b = limit_subject(ip_address("2001:db8:1:2:ffff:ffff:ffff:ffff"))
    c = limit_subject(ip_address("2001:db8:1:3::1"))
    assert a == b == "2001:db8:1:2::/64"
    assert c != a


def test_ipv4_clients_are_counted_by_address() -> None:
    assert limit_subject(ip_address("198.51.100.7")) == "198.51.100.7"
