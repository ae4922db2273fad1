"""The store: the only writer of rows (records, keys, idempotency), and the source of change events."""
