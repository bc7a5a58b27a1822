# One image for web, worker and beat; the role is the argument of bin/entrypoint.sh (see docker-compose.yml).

# The web UI, built with the pinned npm packages; only its static output goes into the final image.
FROM node:20-slim AS frontend
WORKDIR /frontend
ENV PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim AS app

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=realmate.settings.production \
    STATIC_ROOT=/app/staticfiles \
    PORT=8000

WORKDIR /app

# Runtime dependencies only (requirements.txt, pinned); test tools live in requirements-dev.txt.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
COPY --from=frontend /frontend/dist frontend/dist

# Static files are built into the image; the web role collects them again at start (a no-op when unchanged).
RUN SECRET_KEY=build-only-not-secret ALLOWED_HOSTS=build python manage.py collectstatic --noinput --verbosity 0

RUN useradd --create-home --uid 10001 app && chown -R app:app /app
USER app

EXPOSE 8000
ENTRYPOINT ["bin/entrypoint.sh"]
CMD ["web"]
