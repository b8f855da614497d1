"""The route handlers, one module per resource; each is thin: parse, call a feature, answer."""
