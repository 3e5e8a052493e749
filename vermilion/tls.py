"""TLS: SSL contexts built from the tls-* directives (Redis 7.0's tls.c)."""
