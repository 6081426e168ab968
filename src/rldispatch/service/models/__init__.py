"""The served models: loading a model file, holding the champion and challenger, and the
registry of ``rldispatch promote`` decisions."""
