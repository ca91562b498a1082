"""Finance: usage reports, savings against a reference API model, the GPU fleet's true cost,
and what-if replays of recorded traffic.

    period.py     the period, time zone and grouping a report is asked for (parsed, checked)
    source.py     the SQL: group sums and latency buckets, from the rollup or the raw rows
    histogram.py  percentiles from bucket counts (pure)
    report.py     the usage report: groups folded, metrics, savings, totals (JSON-ready)
    savings.py    what self-hosted traffic would have cost at the reference model (pure)
    gpu.py        GPU-hours × hourly rate against tokens served; utilisation by hour of day
    render.py     the report as a table or CSV
    cli.py        `gateway usage`, `gateway gpu`, `gateway whatif`

    whatif.py         `gateway whatif`: the four questions, one report (orchestration)
    whatif_query.py   its one aggregate query: the rollup or the raw rows, per price tier / minute
    reprice.py        recorded sums at another model's or price list's rates (pure)
    replay.py         minute-by-minute replay through another routing set-up and GPU count (pure)
    prices.py         --model and --price-file resolved to (tiered) prices
    whatif_lines.py   actual against counterfactual per group (pure)
    whatif_render.py  a what-if as a table, CSV or JSON

Reads the ledger only (never on a request's path: the admin endpoints and the CLI call it).
"""
