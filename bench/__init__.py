"""The benchmark harness: jobfn measured beside the raw Kubernetes API and beside k8s-jobs.

``python -m bench`` (``make bench``) runs everything; ``--smoke`` proves the harness
in seconds. See ``bench/__main__.py`` for the run and the modules for each measurement.
"""
