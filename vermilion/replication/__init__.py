"""Replication (Redis 7.0's replication.c): the replication ids, offsets and backlog
(state.py), the master side — replicas attached by SYNC/PSYNC, full and partial
resynchronisation, WAIT (master.py) — and the replica side: the link to a master, its
handshake, the RDB transfer and the command stream it applies (replica.py)."""
