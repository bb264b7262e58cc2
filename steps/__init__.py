"""caretflow pipeline steps: preprocess, train, evaluate, main (and their shared core)."""
