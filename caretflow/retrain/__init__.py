"""Retraining from production feedback: read labelled records, build a snapshot, split by time.

``feedback`` reads the server's prediction log (reflected, never imported from ``app``),
``snapshot`` validates those records against the model's own schema and merges them with the
base data by policy, ``timesplit`` holds out the newest production labels.
"""
