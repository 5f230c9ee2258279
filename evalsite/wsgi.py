"""WSGI entry point (gunicorn evalsite.wsgi)."""

from __future__ import annotations

import os

# A web process does small linear algebra per request (choosing an active pair, K x 96
# products): BLAS threads would only contend for the cores gunicorn's workers need, and
# on 2 busy cores they made a choice 3-4 times slower (bench/schedule.py). One thread
# each, unless set otherwise; the task worker (fits) is not started from here.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from django.core.wsgi import get_wsgi_application  # noqa: E402 - after the BLAS setting

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
application = get_wsgi_application()
