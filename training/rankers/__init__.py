"""Learned rankers: fitting and promotion (the trial verdict a running service computes is matcher/models/trial.py)."""
