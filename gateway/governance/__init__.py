"""Governance: who may call the gateway, how much they may spend, how fast.

    keys.py        virtual key format, the keyed hash it is stored as, display prefixes (pure)
    records.py     Team / ApiKey / Principal records, as every other module sees them
    store.py       the database side: teams and keys tables, spend read back from the ledger
    directory.py   the in-memory key cache each replica authenticates against (O(1) lookups)
    admin.py       create / list / update / revoke teams and keys (admin API and CLI share it)
    cli.py         `gateway teams …`, `gateway keys …`
    plan.py        what one request is checked against, and what the answers mean (pure)
    counters.py    the counters' semantics in process (one replica, or Redis unreachable)
    governor.lua   the same semantics in Redis, one script call for a batch of operations
    redis_counters.py  that script over one pipelined RESP connection (hiredis)
    shared.py      Redis or local counters right now: batching, failover, replay, rebuild
    governor.py    the pipeline's admission hook (serving/admission.py) and the settlement
    errors.py      401/403/429 errors with budget and rate-limit details

The HTTP side is gateway/api/auth.py (the middleware) and gateway/api/admin.py. The database
is the source of truth for teams, keys and spend (the ledger); Redis holds only counters that
can be rebuilt from it.
"""
