"""A request sent from a worker process: imports nothing but httpx, so many start quickly."""

from __future__ import annotations

import time
from typing import Any

import httpx


def call(args: tuple[str, str, str, Any, dict[str, str], float]) -> tuple[int, Any]:
    """One request, sent from a worker process at a given wall-clock time (so that many
    processes send theirs together)."""
    method, base, path, body, headers, at = args
    time.sleep(max(0.0, at - time.time()))
    answer = httpx.request(method, base + path, json=body, headers=headers, timeout=300)
    try:
        return answer.status_code, answer.json()
    except ValueError:
        return answer.status_code, answer.text
