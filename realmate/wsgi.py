import os

from django.core.wsgi import get_wsgi_application

from realmate import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realmate.settings.production")

# Before the app is built: the Django instrumentation adds its middleware to the settings the handler reads.
tracing.start("realmate-web", django=True)
application = get_wsgi_application()
