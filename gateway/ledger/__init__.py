"""The usage ledger: one row per client request, written off the request path."""
