"""Provider adapters (pure: build requests, parse responses and streams) and the transport (I/O)."""
