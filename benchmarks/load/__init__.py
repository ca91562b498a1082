"""The load benchmark: `gateway bench` (also `python -m benchmarks.load`)."""
