"""What every benchmark program shares, so that they all measure the same way.

- `result.py`: `RequestInput` and the one per-request result type, `RequestResult`.
- `request.py`: the one request function (aiohttp; vLLM's timing; never raises an error).
- `closed_loop.py`: a plain closed loop of clients around it.
- `stats.py`: the one percentile definition (NumPy's linear interpolation).
- `procs.py`: the servers a benchmark starts and measures (on 127.0.0.1), and their CPU and RSS.
"""
