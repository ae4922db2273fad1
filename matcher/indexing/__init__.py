"""Keeping the indexes in step with the store: documents of records, filter catalogs, the index pairs."""
