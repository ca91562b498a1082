"""`python -m benchmarks.perf`: the gateway-overhead program's gwbench run (the command the
performance targets cite); everything is in `benchmarks.overhead.gwbench`."""

from benchmarks.overhead.gwbench import main

if __name__ == "__main__":
    main()
