"""Finance: what the ledger says about money — usage reports, savings, GPU cost, what-if replays."""
