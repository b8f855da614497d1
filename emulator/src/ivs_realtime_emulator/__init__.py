"""An emulator of the Amazon IVS real-time control plane, for local work and tests.

It speaks the service's own wire protocol (rest-json, SigV4-signed, driven by
botocore's `ivs-realtime` model), keeps stages, public keys, sessions and
participants in memory, checks participant tokens the way IVS does at join time
(`POST /_emulator/join`), and enforces the documented request quotas, with
injectable faults. Entry points: `app.create_emulator_app`, `server.EmulatorServer`
and `cli.add_arguments` / `cli.run`.
"""
