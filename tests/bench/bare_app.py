"""The baseline of the scan-page benchmark: a bare FastAPI JSON endpoint, nothing else."""

from __future__ import annotations

from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/json")
    async def hello() -> dict[str, str]:
        return {"message": "Hello, World!"}

    return app
