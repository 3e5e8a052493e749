"""RESP wire protocol: sans-IO request parsing and reply encoding."""
