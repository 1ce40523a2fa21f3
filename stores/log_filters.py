"""Keeps tokens, codes and signed payloads out of every log line.

BigCommerce puts its signed_payload_jwt (valid for a day) and install code in callback URLs, and the
connect link carries a token: a server that logs its request lines would hand them to anyone who can
read the logs. This filter, on the logging handlers (settings.LOGGING) and on gunicorn's loggers
(gunicorn.conf.py), replaces their values with "[redacted]" wherever they appear in a message.
Pure Python: gunicorn loads it before Django is set up.
"""

import logging
import re

SECRET_PARAMETERS = ("signed_payload_jwt", "code", "token", "app_context", "api_key")
# name=value or name%3Dvalue (a URL inside another URL's query, e.g. next=), not "status_code=".
_SECRET_VALUE = re.compile(
    r"(?:(?<![A-Za-z0-9_])|(?<=%%3F)|(?<=%%26))((?:%s)(?:=|%%3D))[^&%%\s\"'<>]+(?:%%(?!26)[^&%%\s\"'<>]*)*"
    % "|".join(SECRET_PARAMETERS), re.IGNORECASE)
REDACTED = "[redacted]"
# C0 and C1 controls (a tab stays: it cannot start a line) and the Unicode line / paragraph separators.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def redact(text: str) -> str:
    return _SECRET_VALUE.sub(lambda match: match[1] + REDACTED, text)


def escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda match: match[0].encode("unicode_escape").decode("ascii"), text)


class SafeLogLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logging module's to report
            return True
        safe = escape_controls(redact(message))
        if safe != message:
            record.msg, record.args = safe, None
        return True
