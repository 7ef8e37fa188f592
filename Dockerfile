# The console image. It also serves as the task image of the Kestra flows
# (containerImage: devops-loop-console:latest runs `python -m console step NAME FILE --kestra`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    CONSOLE_DATA_DIR=/app/data

WORKDIR /app

# dependencies first: this layer is reused while only the code changes
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .

# an unprivileged user; /app/data holds the console's SQLite database (mount a volume there)
RUN useradd --create-home --uid 10001 console \
    && mkdir -p /app/data \
    && chown -R console:console /app/data
USER console

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"

# CMD, not ENTRYPOINT: Kestra's Docker task runner replaces the command with the task's commands.
# server.py: the pages and the HTTP API (/api/, Alertmanager's receiver) on the one port
CMD ["streamlit", "run", "server.py", "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true"]
