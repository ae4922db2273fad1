"""What serving loads of learned artefacts: the configured encoder and the registry's active models."""
