"""The chomp-tasks bench: what monitoring costs an ingester, and how fast workers store records.

Every figure is measured in one run on the local services, next to a reference measured in the
same run, in a database, queue and Redis key prefix of its own that are removed afterwards.
"""

from chomp_tasks.bench.runner import run_bench

__all__ = ["run_bench"]
