"""Blueprints, one per concern; each route is defined once and documented from itself."""
