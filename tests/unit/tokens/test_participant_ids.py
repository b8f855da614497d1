"""Participant ids (the token's `jti`): 22 symbols of [A-Za-z0-9], uniformly random."""

from __future__ import annotations

import collections
import string

from token_service.tokens.issuers import JTI_LENGTH, new_participant_id

ALPHABET = set(string.ascii_letters + string.digits)


def test_participant_id_is_22_alphanumeric_characters() -> None:
    for _ in range(1000):
        participant_id = new_participant_id()
        assert len(participant_id) == JTI_LENGTH == 22
        assert set(participant_id) <= ALPHABET


def test_participant_ids_do_not_repeat() -> None:
    ids = [new_participant_id() for _ in range(50_000)]
    assert len(set(ids)) == len(ids)


def test_every_symbol_is_equally_likely() -> None:
    # 20,000 ids = 440,000 symbols, ~7,097 per symbol. Chi-square with 61 degrees of
    # freedom: 200 is far beyond its 99.9999th percentile (~130), while a modulo bias
    # (bytes mapped by b % 62 without rejection: 8 symbols 5/4 as likely) scores ~2,900.
    counts = collections.Counter("".join(new_participant_id() for _ in range(20_000)))
    assert set(counts) == ALPHABET
    expected = sum(counts.values()) / len(ALPHABET)
    chi_square = sum((n - expected) ** 2 / expected for n in counts.values())
    assert chi_square < 200
