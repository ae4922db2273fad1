"""Offline evaluation: ranking metrics, paired comparisons, the match path on BEIR sets."""
