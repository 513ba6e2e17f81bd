"""Kueue on the local cluster: built from its Go module, installed on demand (install.py)."""
