"""Benchmarks of the engine, the API and live updates, each a management command (``manage.py bench_*``).

An app of its own, outside ``apps/``: nothing in the platform depends on it, and it depends only on the
platform's public modules.
"""
