"""The matcher command line: the composition root, wiring store, engine, models and training."""
