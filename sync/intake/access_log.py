"""Which requests gunicorn's access log leaves out: the webhook deliveries the intake accepted.

A store can send thousands of deliveries a minute, and every accepted one is already on record: its
WebhookEvent row (with received_at), or the duplicates count on the row of the delivery it repeats. A line
per delivery recorded nothing more and cost the web process about a sixth of a delivery's CPU (the line is
built from every header and environ variable, then redacted: BENCHMARKS.md §4). Refused deliveries (any
4xx), every other path and every other status are still logged; ACCESS_LOG_DELIVERIES=1 logs accepted
deliveries too.

Pure Python: gunicorn.conf.py imports it before Django is set up.
"""

import os

# sync/intake/hooks.py's WEBHOOK_PATH (it imports Django; a test keeps the two equal).
WEBHOOK_PATH = "/bigcommerce/webhooks/"


def deliveries_logged() -> bool:
    return os.environ.get("ACCESS_LOG_DELIVERIES", "").lower() in ("1", "true", "yes", "on")


def access_line_wanted(environ: dict, status_code, *, deliveries: bool = False) -> bool:
    """False for an accepted delivery (POST to the intake answered 200) unless deliveries are logged."""
    if deliveries or status_code != 200:
        return True
    return not (environ.get("PATH_INFO") == WEBHOOK_PATH and environ.get("REQUEST_METHOD") == "POST")
