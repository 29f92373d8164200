"""Request and instance vitals for data ingesters, collected by Celery workers."""
