"""gunicorn settings for `make serve` (production-style web processes).

The access log leaves out the query string and the Referer: BigCommerce's callbacks carry a day-long
signed_payload_jwt and install codes in the URL, and the connect link a token. Every other line
gunicorn writes goes through the same filter as Django's logging (stores/log_filters.py): secrets redacted,
control characters escaped.
"""

import os

from gunicorn.glogging import Logger

from stores.log_filters import SafeLogLines
from sync.intake.access_log import access_line_wanted, deliveries_logged

bind = os.environ.get("BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "8"))
worker_class = "gthread"
accesslog = os.environ.get("ACCESS_LOG", "-")
# %(U)s is the path without its query string; no %(r)s (request line), %(q)s (query) or %(f)s (referer).
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s" %(L)s'


class RedactingLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            log.addFilter(SafeLogLines())
        self._deliveries_logged = deliveries_logged()

    def access(self, resp, req, environ, request_time):
        # No line for an accepted webhook delivery: its WebhookEvent row is the record (sync/intake/access_log.py).
        if access_line_wanted(environ, resp.status_code, deliveries=self._deliveries_logged):
            super().access(resp, req, environ, request_time)


logger_class = RedactingLogger
