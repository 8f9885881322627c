"""App configuration for the benchmarks."""

from django.apps import AppConfig


class BenchConfig(AppConfig):
    """The benchmark commands (``bench_engine``, ``bench_api``, ``bench_live``) and the jobs they queue."""

    name = "bench"
    verbose_name = "Benchmarks"
