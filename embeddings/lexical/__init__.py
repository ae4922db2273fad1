"""The lexical side: a Chinese-aware BM25 index over character n-grams and words."""
