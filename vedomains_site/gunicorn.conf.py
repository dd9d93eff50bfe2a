"""gunicorn settings for the production image (`run web`). Values come from settings.py,
so the environment variables that tune them are documented in .env.example like any other.

Read by the gunicorn master before any worker exists: settings are imported, Django is not
set up here (each worker loads the WSGI application, which does that).
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vedomains_site.settings")

from django.conf import settings

# 0.0.0.0 inside the container: the load balancer reaches the task on its VPC address.
# Local runs and the tests never use this file (localdev.stack binds 127.0.0.1).
bind = [f"0.0.0.0:{settings.VEDOMAINS_WEB_PORT}"]
workers = settings.VEDOMAINS_WEB_WORKERS
worker_class = "gthread"
threads = settings.VEDOMAINS_WEB_THREADS
timeout = settings.VEDOMAINS_WEB_TIMEOUT_SECONDS
graceful_timeout = settings.VEDOMAINS_WEB_TIMEOUT_SECONDS
# Longer than the ALB's 60 s idle timeout, so the ALB (not gunicorn) closes idle
# connections and never sends a request on a socket gunicorn has just closed (a 502).
keepalive = 75
# The heartbeat file on tmpfs: a slow overlay filesystem must not make workers look hung.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Recycle workers now and then, so a slow leak never grows without bound.
max_requests = 2000
max_requests_jitter = 200
# X-Forwarded-For/-Proto are believed only from the load balancer's subnets (the template
# passes them); the metrics scraper also reaches this port and must not choose them.
forwarded_allow_ips = ",".join(settings.VEDOMAINS_WEB_FORWARDED_ALLOW_IPS)
# One line per request comes from RequestIdMiddleware (with the request id), not gunicorn.
accesslog = None
errorlog = "-"
logconfig_dict = settings.LOGGING
