"""Throughput benchmark of the pipeline against a naive sequential sync (`python -m benchmarks.run`).

Not a test: it measures. It runs the real thing (worker processes, Redis, PostgreSQL, stand-ins over
HTTP) on generated data, and the naive baseline on the same data, and reports each figure as a ratio.
"""
