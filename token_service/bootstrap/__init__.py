"""The composition root: builds every client and adapter from `Settings` and wires them into
the app (`app.create_app`), with its lifespan, readiness checks and the ASGI server's part.
The only package that constructs outside clients (boto3, Redis, httpx)."""
