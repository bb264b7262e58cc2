"""The retrain watcher: decide from the server's health reports when to start ``retrain``.

``decision`` holds the pure rules, ``state`` the persisted memory and the cross-process lock,
``run`` the polling and the ``mlflow run . -e retrain`` it starts (``steps/watch.py`` is the
command line).
"""
