# rldispatch: the dispatch service (`rldispatch serve`), CPU only, as a non-root user.
# Build: docker build -t rldispatch .   Run: see compose.yaml and docs/service.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu

WORKDIR /opt/rldispatch
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
# Every dependency pinned by constraints.txt; PyTorch from its CPU-only wheel index.
RUN pip install --no-cache-dir -c constraints.txt . \
    && groupadd --system --gid 10001 rldispatch \
    && useradd --system --uid 10001 --gid rldispatch --home-dir /var/lib/rldispatch \
        --create-home --shell /usr/sbin/nologin rldispatch \
    && mkdir -p /models \
    && chmod 0700 /var/lib/rldispatch

USER 10001:10001
ENV RLDISPATCH_DATA_DIR=/var/lib/rldispatch \
    RLDISPATCH_MODELS_DIR=/models
VOLUME ["/var/lib/rldispatch"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

ENTRYPOINT ["rldispatch", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8000"]
