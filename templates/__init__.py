"""Jinja2 templates of the scan page (installed as the package `ocop_trace.templates`)."""
