"""Infrastructure the features share: Redis (pooled and the multiplexed lane), the breaker,
the shared cache, and the background tasks of the app's lifetime. Imports only the domain."""
