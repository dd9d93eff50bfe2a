"""Running it: the web server, health and metrics, logs. Checked by `web_settings_problems`
(E07x); see vedomains_site/observability/ and README.md, "Production"."""

from __future__ import annotations

from vedomains_site.config.environment import env, redis_auth

# Logs: JSON lines in production, plain text in development ("" = by DJANGO_DEBUG).
VEDOMAINS_LOG_FORMAT: str = env.str("VEDOMAINS_LOG_FORMAT", default="")

# Web (read by vedomains_site/gunicorn.conf.py).
VEDOMAINS_WEB_PORT: int = env.int("VEDOMAINS_WEB_PORT", default=8000)
VEDOMAINS_WEB_WORKERS: int = env.int("VEDOMAINS_WEB_WORKERS", default=2)
VEDOMAINS_WEB_THREADS: int = env.int("VEDOMAINS_WEB_THREADS", default=4)
VEDOMAINS_WEB_TIMEOUT_SECONDS: int = env.int("VEDOMAINS_WEB_TIMEOUT_SECONDS", default=30)
# Peers whose X-Forwarded-* gunicorn believes: the load balancer's subnets only (never "*":
# the metrics scraper reaches the same port). gunicorn's own default is loopback.
VEDOMAINS_WEB_FORWARDED_ALLOW_IPS: list[str] = env.list("VEDOMAINS_WEB_FORWARDED_ALLOW_IPS",
                                                        default=["127.0.0.1", "::1"])

# Health and metrics.
VEDOMAINS_READINESS_TIMEOUT_SECONDS: float = env.float("VEDOMAINS_READINESS_TIMEOUT_SECONDS",
                                                       default=3.0)
# /metrics answers only with "Authorization: Bearer <token>"; empty = the endpoint is off.
VEDOMAINS_METRICS_TOKEN: str = env.str("VEDOMAINS_METRICS_TOKEN", default="")
# Where event counters (AWS calls, task timings, webhook attempts) live; "" = the broker.
VEDOMAINS_METRICS_REDIS_URL: str = redis_auth(env.str("VEDOMAINS_METRICS_REDIS_URL", default=""))
# Beat writes queue depth as CloudWatch EMF lines this often (for autoscaling); 0 = off.
VEDOMAINS_QUEUE_METRICS_INTERVAL_SECONDS: float = env.float(
    "VEDOMAINS_QUEUE_METRICS_INTERVAL_SECONDS", default=60.0)
# The CloudWatch namespace the autoscaling alarms read it from (deploy/control-plane.yaml).
VEDOMAINS_QUEUE_METRICS_NAMESPACE: str = env.str("VEDOMAINS_QUEUE_METRICS_NAMESPACE",
                                                 default="vedomains")
