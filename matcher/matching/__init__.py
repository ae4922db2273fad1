"""How a match runs: query, candidates, fusion, filters, fit, rank, diversity, explanation."""
