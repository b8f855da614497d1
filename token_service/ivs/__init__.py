"""Amazon IVS: the boto3 `ivs-realtime` adapter (one shared client, calls off the event loop,
errors and retries), the stage directory (GetStage behind a shared cache), and the budget that
keeps every replica's CreateParticipantToken calls under IVS's quota."""
