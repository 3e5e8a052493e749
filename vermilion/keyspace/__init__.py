"""The keyspace: databases of keys with expiries, and what acts on them over time."""
