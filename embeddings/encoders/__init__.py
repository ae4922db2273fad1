"""Text to normalised vectors: the Encoder protocol, sentence-transformers models and the static Chinese encoder."""
