"""The active expiry cycle (expire.c activeExpireCycle). Placeholder until written."""


def active_expire_cycle(server) -> None:
    return None
