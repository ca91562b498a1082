"""Benchmarks: measured figures live here, never in timed tests."""
