"""Placeholder: filled in by its family."""

from ..protocol.errors import CommandError


def validate_client_name(name: bytes) -> None:
    # CLIENT SETNAME / HELLO SETNAME: no spaces, newlines or special characters.
    if any(c < 33 or c > 126 for c in name):
        raise CommandError("ERR Client names cannot contain spaces, newlines or special characters.")
