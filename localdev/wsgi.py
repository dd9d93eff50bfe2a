"""WSGI app for the local stack: the Django app plus its static files, for gunicorn.

gunicorn serves no static files and whitenoise is not a dependency, so the admin's CSS
and the Swagger UI assets are served by Django's own `StaticFilesHandler`, the same
handler `runserver` wraps the app in. It reads files through the staticfiles finders
(no `collectstatic` step) and works offline. Production serves static files elsewhere.
"""

from __future__ import annotations

import os

from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vedomains_site.settings")

application = StaticFilesHandler(get_wsgi_application())
