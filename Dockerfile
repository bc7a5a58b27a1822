# Two images: `app` for web, worker, delivery and beat (the role is the argument of bin/entrypoint.sh), and `proxy`, the
# nginx in front of web with the static files of `app`. docker-compose.yml builds each with its target.

# The web UI, built with the pinned npm packages; only its static output goes into the final image.
FROM node:20-slim AS frontend
WORKDIR /frontend
ENV PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim AS app

# SECRET_KEY_FILE: where the entrypoint keeps a generated key when SECRET_KEY is unset (a volume in compose).
# PROMETHEUS_MULTIPROC_DIR: every process's metrics files, in the same volume, so web's /metrics sees all roles.
# The static files are collected below, at build time, so the web role does not collect them again at start.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=realmate.settings.production \
    STATIC_ROOT=/app/staticfiles \
    COLLECTSTATIC_ON_START=false \
    SECRET_KEY_FILE=/var/lib/realmate/secret_key \
    PROMETHEUS_MULTIPROC_DIR=/var/lib/realmate/metrics \
    PORT=8000

WORKDIR /app

# Runtime dependencies only (requirements.txt, every package pinned and hashed); test tools live in
# requirements-dev.txt.
COPY requirements.txt .
RUN pip install --require-hashes -r requirements.txt

# Only what runs, listed: no tests, benchmarks, docs or UI sources. The code and the static files belong to root:
# the runtime user can read them, not change them. Its only writable places are the key's directory and /tmp
# (the liveness files of bin/healthcheck).
COPY --chown=root:root manage.py gunicorn.conf.py ./
COPY --chown=root:root bin bin
COPY --chown=root:root realmate realmate
COPY --chown=root:root core core
COPY --chown=root:root chat chat
COPY --chown=root:root scheduler scheduler
COPY --chown=root:root delivery delivery
COPY --chown=root:root api api
COPY --chown=root:root --from=frontend /frontend/dist frontend/dist

# A throwaway key: production settings refuse to load without a real one, and collectstatic never uses it. No
# metrics files: they would seed the appdata volume.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" ALLOWED_HOSTS=build \
    env -u PROMETHEUS_MULTIPROC_DIR python manage.py collectstatic --noinput --verbosity 0

RUN useradd --create-home --uid 10001 app && install -d -o app -g app -m 700 /var/lib/realmate
USER app

EXPOSE 8000
ENTRYPOINT ["bin/entrypoint.sh"]
CMD ["web"]

# The reverse proxy: nginx with its configuration and the static files collected above.
FROM nginx:1.27-alpine AS proxy
COPY deploy/nginx.conf /etc/nginx/conf.d/default.conf
COPY --from=app /app/staticfiles /usr/share/nginx/static
EXPOSE 8000
