FROM python:3.11-slim
# CPU torch first: a bare `torch` requirement would pull the multi-GB CUDA build.
# For a GPU image, build with --build-arg TORCH="torch" and add the [gpu] extra.
ARG TORCH="torch==2.13.0"
ARG TORCH_INDEX=""
WORKDIR /app
RUN pip install --no-cache-dir ${TORCH_INDEX:+--index-url $TORCH_INDEX} "$TORCH"
COPY pyproject.toml README.md ./
COPY cmrsearch cmrsearch
COPY catalog catalog
COPY cmrclip cmrclip
COPY indexer indexer
COPY search search
COPY ui ui
COPY trainer trainer
COPY phantom phantom
COPY migrations migrations
RUN pip install --no-cache-dir .
RUN useradd --create-home cmr && mkdir -p /var/lib/cmrsearch && chown cmr /var/lib/cmrsearch
USER cmr
EXPOSE 8501
CMD ["cmrsearch", "status"]
