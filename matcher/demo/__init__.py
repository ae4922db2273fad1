"""The demo park: records the project ships, loaded into the store."""
