"""OCOP trace: the service around the ledger (settings, use cases, API, pages, labels, CLI)."""

__version__ = "0.1.0"
