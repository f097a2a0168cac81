# The project's two images, on one pinned Python base. Build from the repository root:
#   docker build --target gateway -t finops-gateway:0.1.0 .
#   docker build --target loadgen -t finops-loadgen:0.1.0 .
FROM python:3.11.14-slim-bookworm AS python
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

# The embedding model the learned router was trained on (embedding-model/distill.py). PyTorch and
# transformers stay in this stage, which no change to the services rebuilds; the gateway needs
# only the distilled folder.
FROM python AS embedding-model
ENV HF_HUB_OFFLINE=1 TQDM_DISABLE=1
COPY embedding-model/requirements.txt embedding-model/requirements.lock /build/
RUN pip install -r /build/requirements.txt -c /build/requirements.lock
COPY embedding-model/distill.py /build/
# safetensors writes its file readable by its owner only: the gateway runs as another user.
RUN python /build/distill.py /opt/embedding-model \
 && chmod -R a+rX /opt/embedding-model

# The project's sources, which both images install from, at the locked versions.
FROM python AS project
ENV TIKTOKEN_CACHE_DIR=/opt/tiktoken
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY services ./services
COPY infra ./infra

# The AI gateway: only its own dependencies (no Locust, matplotlib or Valkey). Tokenizer files are
# fetched now, so the pod never downloads at run time.
FROM project AS gateway
ENV GATEWAY_EMBEDDING_MODEL=/opt/embedding-model \
    HF_HUB_OFFLINE=1
COPY --from=embedding-model /opt/embedding-model /opt/embedding-model
RUN pip install -c requirements.lock . \
 && python -c "import tiktoken; [tiktoken.get_encoding(e) for e in ('cl100k_base', 'o200k_base')]" \
 && useradd --system --uid 10001 --no-create-home gateway
USER 10001
# As the pod's user: the build fails if it cannot load the model, or if the learned router would
# not use its embedding head with it.
RUN finops-gateway --check-embedder
EXPOSE 8080
ENTRYPOINT ["finops-gateway", "--host", "0.0.0.0", "--port", "8080"]

# The load generator: Locust with the project's locustfile and default scenario baked in.
FROM project AS loadgen
RUN pip install -c requirements.lock ".[loadgen]" \
 && python -c "import tiktoken; [tiktoken.get_encoding(e) for e in ('cl100k_base', 'o200k_base')]" \
 && ln -s "$(python -c 'import loadgen, pathlib; print(pathlib.Path(loadgen.__file__).parent)')/locustfile.py" /app/locustfile.py \
 && useradd --system --uid 10001 --no-create-home locust
USER 10001
EXPOSE 8089 5557
ENTRYPOINT ["locust", "-f", "/app/locustfile.py"]
