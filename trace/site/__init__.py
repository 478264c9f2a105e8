"""The public site: the scan pages and the forms on them (HTML, no script)."""
