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
# /healthz answers once the service API exists (see docs); until then the check runs the CLI.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["ocop-trace", "verify", "--json", "--workers", "1"]
CMD ["sh", "-c", "ocop-trace init && ocop-trace serve --host 0.0.0.0 --port 8000"]
