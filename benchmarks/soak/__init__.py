"""Soak: a long run of mixed traffic against a real `gateway serve` — memory, file descriptors
and the ledger checked at the end (`python -m benchmarks.soak --help`)."""
