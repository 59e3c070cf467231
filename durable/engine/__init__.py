"""Runs workflows: executes claimed steps, and the worker loop that claims them."""
