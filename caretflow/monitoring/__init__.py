"""Monitoring a model from its prediction log: drift, live and estimated metrics, A/B, report.

``steps.monitor`` (entry point ``monitor``) puts these pieces together into one MLflow run per
model and window length; the server's own gauges and alerts are in ``app/``.
"""
