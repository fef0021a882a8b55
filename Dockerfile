# One image for every process: web (default), relay, projections, db migrate.
#   docker build -t lora-pipeline:dev .
#   docker run --rm -e DATABASE_URL=... -e NATS_URL=... -p 8000:8000 lora-pipeline:dev
#   docker run --rm -e DATABASE_URL=... -e NATS_URL=... lora-pipeline:dev python -m pipeline relay
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIPELINE_WEB_HOST=0.0.0.0 \
    PIPELINE_WEB_PORT=8000 \
    PIPELINE_STATE_DIR=/var/lib/pipeline

# Only what `pip install .` needs (the packages listed in pyproject.toml), so a
# local .env, .state/ (embedded database), .venv/ or tests never enter the image.
WORKDIR /src
COPY pyproject.toml ./
COPY pipeline ./pipeline
COPY domain ./domain
COPY projections ./projections
COPY handlers ./handlers
COPY gpu_agent ./gpu_agent
COPY web ./web
COPY migrations ./migrations
RUN pip install --no-cache-dir . \
    && rm -rf /src

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app \
    && mkdir -p /app "$PIPELINE_STATE_DIR" \
    && chown app:app /app "$PIPELINE_STATE_DIR"
USER app
WORKDIR /app

EXPOSE 8000

# Meaningful for the web process only; compose disables it for relay/projections.
# /health answers 503 when the database or NATS is down, which urlopen raises on.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PIPELINE_WEB_PORT', '8000') + '/health', timeout=4)"]

CMD ["python", "-m", "pipeline", "web"]
