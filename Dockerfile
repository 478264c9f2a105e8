# Multi-stage: build the same wheel CI tests, install it into a slim runtime image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ledger ledger
COPY trace trace
COPY templates templates
RUN python -m pip install --no-cache-dir build && python -m build --wheel --outdir /dist

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TRACE_DATABASE_URL=sqlite:////data/trace.db \
    TRACE_KEY_DIR=/data/keys
COPY --from=build /dist/*.whl /tmp/
RUN python -m pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl \
    && useradd --create-home --uid 10001 trace \
    && mkdir -p /data && chown trace:trace /data
USER trace
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# The slim image has no curl; Python's urllib asks /healthz (database and ledger head).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# TRACE_SECRET_KEY must be provided at run time (the app refuses a placeholder outside
# development); init is safe to repeat and upgrades the schema.
ENV TRACE_ENVIRONMENT=production
CMD ["sh", "-c", "ocop-trace init && ocop-trace serve --host 0.0.0.0 --port 8000 --workers 2"]
