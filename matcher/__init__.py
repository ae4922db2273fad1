"""parkmatch core: settings, store, matching, digests (framework-free)."""
