"""Governance: who may call the gateway, how much they may spend, how fast.

    keys.py        virtual key format, the keyed hash it is stored as, display prefixes (pure)
    records.py     Team / ApiKey / Principal records, as every other module sees them
    store.py       the database side: teams and keys tables, spend read back from the ledger
    directory.py   the in-memory key cache each replica authenticates against (O(1) lookups)
    admin.py       create / list / update / revoke teams and keys (admin API and CLI share it)
    auth.py        the ASGI middleware: master key, virtual keys, /admin and /metrics rules
    plan.py        what one request must be checked against, and its answers (pure)
    counters.py    the counters' semantics in process (one replica, or Redis unreachable)
    redis_counters.py + governor.lua   the same semantics in Redis, one script call per batch
    governor.py    the pipeline's admission hook: batches checks, fails over to local counters
    errors.py      401/403/429 errors with budget and rate-limit details

The database is the source of truth for teams, keys and spend (the ledger); Redis holds only
counters that can be rebuilt from it.
"""
