"""`python -m benchmarks.instructions`: instructions a request, counted by callgrind; everything
is in `benchmarks.overhead.instructions`."""

from benchmarks.overhead.instructions import main

if __name__ == "__main__":
    main()
