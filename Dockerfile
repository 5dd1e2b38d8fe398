# The service with its embedded defaults: SQLite in /app/data, checkpoints in /app/models_store.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.lock ./
# torch's CPU wheels live on PyTorch's own index; the rest comes from PyPI.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
    -r requirements.lock
COPY app ./app
COPY alembic ./alembic
COPY alembic.ini ./
COPY data/*.csv ./data/
ENV PC_HOST=0.0.0.0 PC_PORT=8000
EXPOSE 8000
CMD ["python", "-m", "app"]
