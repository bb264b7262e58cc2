"""caretflow core library: data, features, modelling, the model format, metrics, registry.

Both sides import it: the MLproject entry points in ``steps/`` and the server in ``app/``.
The modules the server uses (``inference``, ``registry``, ``metrics``, ``drift``) import
neither Hydra nor ``steps``.
"""
