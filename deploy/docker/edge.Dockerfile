# The edge image: an ONNX model and onnxruntime, nothing else (no scikit-learn, pandas or FastAPI).
#   docker build -f deploy/docker/edge.Dockerfile -t shipml-edge:0.1.0 .
#   docker run --init --cpus 0.5 --memory 256m -p 127.0.0.1:8080:8080 shipml-edge:0.1.0
# The same stages as the serving image (see deploy/docker/Dockerfile for why each one exists).
# EDGE_BUNDLE is an edge bundle folder made by `shipml edge export BUNDLE --out DIR`.

ARG BASE_IMAGE=python:3.11-slim

# ---- 1. wheels -----------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS wheels
WORKDIR /build
COPY deploy/docker/requirements-edge.txt requirements.txt
RUN pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /wheels/deps \
        -r requirements.txt
COPY pyproject.toml README.md ./
COPY shared ./shared
RUN pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /wheels/app .

# ---- 2. deps: numpy + onnxruntime in a trimmed virtual environment ------------------------------
# Also gone: numpy's subpackages that neither numpy's own import, onnxruntime nor the device loads
# (random, fft, polynomial, ma, f2py, testing: ~4 MB); the app stage's import check proves it.
FROM ${BASE_IMAGE} AS deps
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils tini \
    && rm -rf /var/lib/apt/lists/*
COPY deploy/docker/requirements-edge.txt /tmp/requirements.txt
COPY deploy/docker/slim-venv.sh /usr/local/bin/slim-venv
COPY --from=wheels /wheels/deps /wheels/deps
RUN python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install --no-cache-dir --disable-pip-version-check \
        --no-index --find-links /wheels/deps --no-compile --no-deps -r /tmp/requirements.txt \
    && slim-venv /opt/venv numpy onnxruntime \
    && site=/opt/venv/lib/python3.11/site-packages/numpy \
    && rm -rf "$site/random" "$site/fft" "$site/polynomial" "$site/ma" "$site/f2py" "$site/testing" \
    && echo /opt/app > /opt/venv/lib/python3.11/site-packages/shipml-app.pth

# ---- 3. app: only the device side of the kit is imported ----------------------------------------
FROM deps AS app
COPY --from=wheels /wheels/app /wheels/app
COPY deploy/docker/keep-imported.py /tmp/keep-imported.py
# Only the modules the device imports (its update and signature checks included) stay in the image.
RUN pip install --no-cache-dir --disable-pip-version-check --no-index --no-deps --no-compile \
        --target /opt/app /wheels/app/shipml-*.whl \
    && rm -rf /opt/app/bin \
    && /opt/venv/bin/python -B /tmp/keep-imported.py /opt/app shipml \
        shipml.edge.device shipml.edge.update shipml.signing \
    && /opt/venv/bin/python -B -c "import shipml.edge.device, shipml.edge.update"
# The edge bundle (`shipml edge export BUNDLE --out DIR`), readable by the runtime user.
ARG EDGE_BUNDLE=artifacts/edge-bundle
COPY ${EDGE_BUNDLE} /model
RUN chmod -R a+rX,go-w /model

# ---- 4. runtime ---------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
COPY --from=deps /usr/bin/tini /usr/bin/tini
RUN groupadd --system --gid 10001 shipml \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin shipml
COPY --from=deps /opt/venv /opt/venv
COPY --from=app /opt/app /opt/app
COPY --from=app /model /model
ENV PATH=/opt/venv/bin:$PATH \
    TINI_SUBREAPER=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2)"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["python", "-m", "shipml.edge", "serve", "/model", "--host", "0.0.0.0", "--port", "8080"]
