# The control plane's image: one image for every process type (bin/run web | worker QUEUE |
# beat | migrate). Build: docker build -t vedomains:$(git rev-parse --short HEAD) .
# Linted by hadolint in the test suite (tests/test_image.py); see deploy/README.md.

# The base by digest, so a rebuild gets the same bytes however the tag moves. This is the
# digest public Dockerfiles pin for python:3.11-slim-bookworm (see deploy/README.md, "The
# image": no registry is reachable from where it was written, so confirm it, and refresh it
# for security updates, with `docker buildx imagetools inspect python:3.11-slim-bookworm`).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

# --- build: install the runtime requirements into a virtualenv, collect static files -------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv
# Requirements first: this layer is rebuilt only when they change, not with every commit.
# The lock pins every package, dependencies included, with the hashes of its published files:
# pip refuses anything else (requirements.lock is generated from requirements.txt, see
# deploy/README.md, "The image").
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.lock

WORKDIR /app
COPY . .
# collectstatic needs settings but no secret: a throwaway key for this one command.
RUN DJANGO_SECRET_KEY=collectstatic-only DJANGO_STATIC_ROOT=/app/static \
        python manage.py collectstatic --noinput --verbosity 0 \
    && python -m compileall -q /app /opt/venv

# --- runtime: the virtualenv and the code, run as an unprivileged user --------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=vedomains_site.settings \
    DJANGO_DEBUG=false \
    DJANGO_STATIC_ROOT=/app/static \
    VEDOMAINS_LOG_FORMAT=json

RUN groupadd --system --gid 10001 vedomains \
    && useradd --system --uid 10001 --gid vedomains --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin vedomains

COPY --from=build /opt/venv /opt/venv
# Owned by root and not writable by the app user: the code cannot be changed at run time.
COPY --from=build /app /app

WORKDIR /app
USER 10001:10001
EXPOSE 8000

ENTRYPOINT ["/app/bin/run"]
CMD ["web"]
