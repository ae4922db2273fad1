"""What happened after a match: feedback and the outcome funnel."""
