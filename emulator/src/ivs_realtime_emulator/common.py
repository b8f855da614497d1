"""Checks shared by every module of operations: reserved tag keys, the attributes'
size, and a stage or ResourceNotFoundException.

They live apart from `operations.py` because it imports the other operation
modules (to list their handlers), so those could not import them from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar

from ivs_realtime_emulator import rules
from ivs_realtime_emulator.errors import not_found, validation
from ivs_realtime_emulator.state import Stage

if TYPE_CHECKING:
    from ivs_realtime_emulator.state import RegionState

R = TypeVar("R")


def check_tag_keys(tags: Mapping[str, str]) -> None:
    reserved = sorted(key for key in tags if key.lower().startswith("aws:"))
    if reserved:
        raise validation(f"Tag keys with the reserved prefix 'aws:' are not allowed: {reserved}")


def check_attributes(attributes: Mapping[str, str]) -> None:
    size = rules.attributes_size(attributes)
    if size > rules.MAX_ATTRIBUTES_BYTES:
        raise validation(
            f"attributes total {size} bytes; at most {rules.MAX_ATTRIBUTES_BYTES} are allowed"
        )


def or_404(resources: Mapping[str, R], arn: str, kind: str) -> R:
    """`resources[arn]`, or ResourceNotFoundException "<kind> <arn> not found"."""
    resource = resources.get(arn)
    if resource is None:
        raise not_found(f"{kind} {arn} not found")
    return resource


def stage_or_404(region: RegionState, arn: str) -> Stage:
    return or_404(region.stages, arn, "Stage")
