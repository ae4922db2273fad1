"""Encoder training: the default static encoder and fine-tuning sentence-transformers models."""
