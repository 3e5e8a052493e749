"""Persistence in Redis's own formats: RDB snapshots (and, later, the multi-part AOF)."""
