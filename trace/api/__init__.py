"""/api/v1: JSON for programs, one router per concern (OpenAPI at /docs)."""
