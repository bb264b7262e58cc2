"""Alerts: state changes written once to the prediction database, then POSTed to webhooks.

``events`` turns what the background loop observes into alert rows (exactly one per change,
however many workers and instances run); ``delivery`` sends each alert to every URL of
``ALERT_WEBHOOK_URLS``, retrying with backoff until the receiver takes it.
"""
