"""Stress and fault scenarios for fastloop and the stdlib loop (see harness.py)."""
