# parkmatch API on CPU. Build: docker build -t parkmatch .
# Run:   docker run -p 8000:8000 -v parkmatch-data:/data parkmatch
# Demo:  docker run --rm -v parkmatch-data:/data parkmatch matcher demo   (prints an admin API key last)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# CPU torch from the PyTorch index first, so that installing the project does not pull a CUDA build
RUN pip install --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"

WORKDIR /app
COPY pyproject.toml README.md ./
COPY matcher ./matcher
COPY embeddings ./embeddings
COPY api ./api
COPY training ./training
RUN pip install . && rm -rf /app/build

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin parkmatch \
    && mkdir -p /data /models \
    && chown parkmatch:parkmatch /data /models
ENV MATCHER_DATA_DIR=/data MATCHER_MODEL_CACHE_DIR=/models
# the default encoder, built into the image once (the packaged teacher, then its static student)
USER parkmatch
RUN matcher encoder build --quiet
USER root
VOLUME ["/data"]
USER parkmatch
WORKDIR /home/parkmatch

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["matcher", "serve", "--host", "0.0.0.0", "--port", "8000"]
