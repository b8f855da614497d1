"""The one-time move of the mapping log's user index to (issuer, user id).

Up to 0.1.0 a user's participants were indexed under `ts:{ts}:u:<hash of the user id>`, so
the same user id from two issuers (two users) shared one index, and a lookup of one listed
the other's participants. The index is now `ts:{ts}:ui:<user key>` (`mapping.records`), and
nothing writes the old one. `migrate_user_indexes` (`token-service participants migrate`)
moves every entry of the old indexes whose record still exists to its user's index, and
takes it out of the old one (an entry whose record has expired is only taken out), so
the old keys are gone once it has run.

It is idempotent (an entry moved twice is one entry; a second run finds nothing to do),
safe while replicas serve (it writes what the admission script writes: the same index
members and expiries, and the user id's set of user keys), and resumable (stopped
midway, the next run goes on). Entries an older replica adds during a rolling update
are moved by a run after the update. Bans need no move: a ban stored before bans had an
issuer reads as a ban of the user id from every issuer, under the keys it always had.
"""

from __future__ import annotations

from dataclasses import dataclass

from token_service.domain import user_key
from token_service.infra.redis import RedisClient, reply_text
from token_service.mapping.records import (
    LEGACY_USER_INDEX_PATTERN,
    decode_record,
    record_key,
    user_index_key,
    user_keys_key,
)

#: Entries moved per script call: small enough that one call never holds Redis long.
CHUNK = 200

# Moves entries of one old index. KEYS: the old index, then per entry its record, its
# user's index and its user id's set of user keys. ARGV: per entry its member and user key
# (empty: the record was gone when read, only take the entry out).
# An entry whose record exists joins its user's index (the index and the set expiring no
# earlier than the record, as `write_record` does); every entry leaves the old index.
# Returns how many were moved.
_MOVE_SCRIPT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local moved = 0
for i = 1, #ARGV / 2 do
  local rk, uk, kk = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local member, user = ARGV[2 * i - 1], ARGV[2 * i]
  local ttl = redis.call('PTTL', rk)
  if user ~= '' and ttl ~= -2 then
    redis.call('ZADD', uk, 0, member)
    redis.call('SADD', kk, user)
    if ttl > 0 then
      for _, key in ipairs({uk, kk}) do
        redis.call('PEXPIREAT', key, now_ms + ttl, 'NX')
        redis.call('PEXPIREAT', key, now_ms + ttl, 'GT')
      end
    end
    moved = moved + 1
  end
  redis.call('ZREM', KEYS[1], member)
end
return moved
"""


@dataclass(frozen=True)
class MigrationReport:
    #: Old user indexes found (each is gone afterwards).
    indexes: int = 0
    #: Entries moved to their user's (issuer, user id) index.
    moved: int = 0
    #: Entries dropped: their record had expired.
    dropped: int = 0


async def migrate_user_indexes(client: RedisClient) -> MigrationReport:
    """Move every old user index (see the module's docstring); say what was done."""
    move = client.register_script(_MOVE_SCRIPT)
    indexes = moved = dropped = 0
    async for raw_key in client.scan_iter(
        match=LEGACY_USER_INDEX_PATTERN, count=1000, _type="zset"
    ):
        old = reply_text(raw_key)
        indexes += 1
        while True:
            # What was moved has left the index: the next chunk is always at its start.
            chunk = await client.zrangebylex(old, "-", "+", start=0, num=CHUNK)
            members = [reply_text(m) for m in chunk]
            if not members:
                break
            pids = [m.split(":", 1)[1] for m in members]
            values = await client.mget([record_key(p) for p in pids])
            keys, args = [old], []
            for member, pid, value in zip(members, pids, values, strict=True):
                if value is None:
                    # Expired: the script only takes it out (the keys are placeholders).
                    keys += [record_key(pid), old, old]
                    args += [member, ""]
                    continue
                record = decode_record(value if isinstance(value, bytes) else value.encode())
                keys += [
                    record_key(pid),
                    user_index_key(record.issuer, record.app_user_id),
                    user_keys_key(record.app_user_id),
                ]
                args += [member, user_key(record.issuer, record.app_user_id)]
            count = int(await move(keys=keys, args=args))
            moved += count
            dropped += len(members) - count
    return MigrationReport(indexes=indexes, moved=moved, dropped=dropped)
