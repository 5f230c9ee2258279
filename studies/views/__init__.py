"""Pages of the studies app: the rater's (rater.py) and the researcher's (research.py)."""
