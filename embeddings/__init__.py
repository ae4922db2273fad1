"""Text normalisation, tokenisation, encoders and vector indexes (framework-free)."""
