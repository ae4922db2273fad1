"""Vector indexes: FAISS (exact and approximate) beside an exact reference, saved through embeddings.persist."""
