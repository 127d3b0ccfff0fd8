"""Benchmarks (measurements, not tests): run from the repository root as modules,
`python -m bench.run_all --quick` or `python -m bench.bench_extract`; see README.md."""
