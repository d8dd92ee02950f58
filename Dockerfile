# rdv service image: `docker compose up --build` builds it; one uvicorn worker per container
# (exemplars on, see telemetry/metrics.py).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PROMETHEUS_DISABLE_CREATED_SERIES=true \
    RDV_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY telemetry ./telemetry
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app rdv \
    && mkdir -p /data \
    && chown rdv /data

USER rdv
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
CMD ["rdv", "serve", "--host", "0.0.0.0", "--port", "8000"]
