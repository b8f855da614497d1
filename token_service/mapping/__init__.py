"""The participant-ID mapping log: records and their key layout, the Redis and memory stores,
moderation (disconnect, ban), and IVS stage events attached to records."""
