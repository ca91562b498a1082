"""The gateway-overhead runs: `python -m benchmarks.overhead` and `python -m benchmarks.perf`."""
