"""Value structures that are more than a builtin (one module per type)."""
