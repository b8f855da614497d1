"""The `token-service` command: the entry points. Each reads the environment, builds settings
and calls bootstrap; none imports the HTTP layer."""
