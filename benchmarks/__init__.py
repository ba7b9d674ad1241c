"""Benchmark scripts: figures printed for the issue notes, never asserted in tests."""
