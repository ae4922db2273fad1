"""Training and evaluation data: BEIR sets, labelled pairs from feedback, encoder training pairs."""
