"""Stage ARNs and the glob patterns a policy file uses to select stages.

A pattern is either `*` (every stage) or a stage ARN in which the region, the account
and the stage id may contain the wildcards `*` (any run of characters), `?` (one
character) and `[...]` / `[!...]` (one character of, or not of, a set). A wildcard
never matches beyond its own ARN segment, so `arn:aws:ivs:*:123456789012:stage/*`
cannot accidentally match another account: each `*` only stands for characters that
are valid in that segment. That restriction is what lets a pattern be validated at
load time instead of silently matching nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FIXED_PREFIX = ("arn", "aws", "ivs")
_RESOURCE_PREFIX = "stage/"

#: The characters each variable segment of a stage ARN may hold (from the model's pattern).
_REGION_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"
_ACCOUNT_CHARS = "0123456789"
_STAGE_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"


class PatternError(ValueError):
    """A stage pattern that cannot be used; the message says why."""


@dataclass(frozen=True)
class StagePattern:
    """One entry of a rule's `stages` list: an exact stage ARN or a glob."""

    text: str
    _regex: re.Pattern[str] = field(repr=False, compare=False)
    #: Whether the pattern matches every stage ARN (`*`, or `*` in every segment).
    matches_every_stage: bool = field(compare=False)

    @classmethod
    def parse(cls, text: str) -> StagePattern:
        """Compile `text`, raising `PatternError` with a readable reason if it is invalid."""
        if text == "*":
            return cls(text, re.compile(r".*", re.DOTALL), matches_every_stage=True)
        parts = text.split(":")
        if len(parts) != 6 or tuple(parts[:3]) != _FIXED_PREFIX:
            raise PatternError(
                "expected '*' or a stage ARN such as "
                "'arn:aws:ivs:us-east-1:123456789012:stage/*' (wildcards stay within "
                "one segment: region, account or stage id)"
            )
        region, account, resource = parts[3], parts[4], parts[5]
        if not resource.startswith(_RESOURCE_PREFIX):
            raise PatternError(f"the resource must be 'stage/<id>', not {resource!r}")
        stage_id = resource[len(_RESOURCE_PREFIX) :]
        segments = (
            ("region", region, _REGION_CHARS),
            ("account", account, _ACCOUNT_CHARS),
            ("stage id", stage_id, _STAGE_ID_CHARS),
        )
        regexes = [_segment_regex(name, glob, chars) for name, glob, chars in segments]
        regex = re.compile("arn:aws:ivs:" + regexes[0] + ":" + regexes[1] + ":stage/" + regexes[2])
        every = all(set(glob) == {"*"} for _, glob, _ in segments)
        return cls(text, regex, matches_every_stage=every)

    @property
    def is_glob(self) -> bool:
        return any(c in self.text for c in "*?[")

    def matches(self, stage_arn: str) -> bool:
        return self._regex.fullmatch(stage_arn) is not None


def _segment_regex(name: str, glob: str, chars: str) -> str:
    """Translate one segment's glob into a regex that only spans `chars`."""
    if not glob:
        raise PatternError(f"the {name} is empty")
    any_char = "[" + re.escape(chars) + "]"
    out: list[str] = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            out.append(any_char + "*")
        elif c == "?":
            out.append(any_char)
        elif c == "[":
            end = glob.find("]", i + 1)
            if end == -1:
                raise PatternError(f"unclosed '[' in the {name} {glob!r}")
            out.append(_class_regex(name, glob[i + 1 : end], chars))
            i = end
        elif c in chars:
            out.append(re.escape(c))
        else:
            raise PatternError(f"{c!r} cannot appear in the {name} of a stage ARN ({glob!r})")
        i += 1
    return "".join(out)


def _class_regex(name: str, body: str, chars: str) -> str:
    any_char = "[" + re.escape(chars) + "]"
    negate = body.startswith("!")
    if negate:
        body = body[1:]
    if not body:
        raise PatternError(f"empty character class in the {name}")
    members: list[str] = []
    i = 0
    while i < len(body):
        # `a-z` is a range; a `-` at either end is a literal hyphen, as in fnmatch.
        if i + 2 < len(body) and body[i + 1] == "-":
            low, high = body[i], body[i + 2]
            if low > high:
                raise PatternError(f"reversed range {low}-{high} in the {name}")
            used: tuple[str, ...] = (low, high)
            members.append(re.escape(low) + "-" + re.escape(high))
            i += 3
        else:
            used = (body[i],)
            members.append(re.escape(body[i]))
            i += 1
        for c in used:
            if c not in chars:
                raise PatternError(f"{c!r} cannot appear in the {name} of a stage ARN")
    inner = "[" + "".join(members) + "]"
    # A negated class (or a range such as `0-z`) must still only match characters valid
    # in the segment, so it can never swallow the `:` or `/` between segments.
    return f"(?!{inner}){any_char}" if negate else f"(?={inner}){any_char}"
