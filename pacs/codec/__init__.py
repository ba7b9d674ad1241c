"""Transfer-syntax conversion."""
