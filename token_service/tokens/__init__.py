"""Participant tokens: the desk that takes an authenticated request through policy, admission
and an issuer (`desk`), the same for a token exchange (`exchange`), the local ES384 and the
CreateParticipantToken issuers (`issuers`), and the key-usage count around the local one
(`counting`)."""
