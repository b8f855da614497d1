"""The HTTP edge: routes (`routes/`), request and response schemas, the strict body check,
the one mapping from errors to problem+json, guards, the caller's IP, the request-head limit,
clients that hang up, CORS, request ids, HTTP metrics, the OpenAPI additions, and the demo
page's files (`web/`). Domain code below it knows nothing of HTTP."""
