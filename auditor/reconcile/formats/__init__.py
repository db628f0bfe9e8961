"""One module per provider export format; each has KIND, PROVIDER, ``detect(docs)`` and
``read(docs, where)``. ``auditor.reconcile.load`` sniffs the content and picks one."""
