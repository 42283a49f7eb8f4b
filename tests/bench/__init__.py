"""`make bench`: bill runs and the onboarding path on this machine's PostgreSQL and Redis.

Run as ``python -m tests.bench.run``. No module here starts with ``test_``: pytest does not collect
the benchmark; ``tests/integration/test_bench_smoke.py`` runs it at a tiny scale.
"""
