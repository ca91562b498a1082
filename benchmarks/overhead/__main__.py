"""`python -m benchmarks.overhead`: see `benchmarks.overhead.simulator`."""

from benchmarks.overhead.simulator import main

main()
