"""Codec Arena analysis: vote tables -> Bayesian Elo -> rate/quality curves and BD-rates.

A plain library (it never imports Django). Importing the package is cheap; the modules
that need PyMC (:mod:`analysis.model`, :mod:`analysis.fit`) load it when imported.
"""
