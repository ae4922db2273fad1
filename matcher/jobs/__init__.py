"""Background jobs on a Celery broker (RabbitMQ or Redis): digests in chunks, large imports, reindexing, index
snapshots and webhook deliveries. The `job` table is the record of each job; the broker only carries work."""
