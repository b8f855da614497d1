"""Admission: whether a token request may proceed, decided at once in one Redis script: bans,
rate limits (GCRA, `ratelimit`) and the mapping record (`gate`), with the fallbacks used
while Redis fails."""
