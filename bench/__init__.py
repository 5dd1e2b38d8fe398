"""The benchmark suite: the service against the tutorial's own plain PyTorch loop.

`python -m bench` (or `make bench`) runs it, prints a table and writes JSON; see
bench/README.md. Every comparison is measured in the same run of the suite, on the same
machine, as medians of repeats.
"""
