FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini celeryconfig.py ./
COPY alembic ./alembic
COPY chomp_tasks ./chomp_tasks
RUN pip install --no-cache-dir . && useradd --create-home chomp
USER chomp
CMD ["celery", "-A", "chomp_tasks", "worker", "-B", "--monitored", "--loglevel", "INFO"]
