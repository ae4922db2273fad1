"""Learned rankers: fitting, promotion and interleaved trials."""
