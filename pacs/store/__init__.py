"""Content-addressed Part 10 files on disk."""
