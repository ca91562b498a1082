"""`python -m benchmarks.load`: the same commands as `gateway bench` (`benchmarks.load.cli`)."""

from benchmarks.load.cli import bench_app

bench_app(prog_name="python -m benchmarks.load")
