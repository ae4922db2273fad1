"""Vector indexes: FAISS (exact and approximate) beside an exact reference, with versioned persistence."""
