"""Training and offline evaluation: BEIR data, encoders, rankers, model registry."""
