"""Bulk import: reading CSV, JSON Lines and XLSX, mapping columns, validating rows."""
