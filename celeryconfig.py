"""Celery settings an operator may change beyond the CHOMP_* variables.

chomp_tasks configures Celery from its own settings and loads this module on top of them when
CHOMP_CELERY_CONFIG names it (`CHOMP_CELERY_CONFIG=celeryconfig`, run from this folder or with
it on PYTHONPATH). Every lowercase name here overrides the Celery setting of the same name.
The values below are examples suited to a worker that stores vitals; delete what you do not
want to change.
"""

# Restart a pool process after this many tasks, bounding the memory a long run can gather.
worker_max_tasks_per_child = 10_000

# Send task events for monitors such as Flower; off by default to keep the broker quiet.
worker_send_task_events = False
