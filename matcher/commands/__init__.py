"""Command groups of the `matcher` CLI."""
