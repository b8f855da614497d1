"""The HTTP edge: thin handlers, request/response schemas and the one error mapping."""
