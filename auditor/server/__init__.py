"""The OTLP sidecar (``auditor serve``): receivers, spool, trace window, audit worker, store,
metrics and the read side. See ``sidecar.py`` for how the pieces fit."""
