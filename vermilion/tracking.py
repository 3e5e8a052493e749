"""CLIENT TRACKING: client-side caching invalidation (Redis 7.0's tracking.c)."""
