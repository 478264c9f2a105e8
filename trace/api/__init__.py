"""HTTP API routers; each module serves one concern."""
