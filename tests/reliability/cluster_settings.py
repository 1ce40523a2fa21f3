"""Settings for the qcluster subprocesses the reliability tests start: the project's settings, with the
worker's pid in every log line (so a test can kill -9 the very process that runs a sync)."""

from ortto_bridge.settings import *  # noqa: F401,F403
from ortto_bridge.settings import LOGGING

LOGGING = {
    **LOGGING,
    "formatters": {"plain": {"format": "%(asctime)s pid=%(process)d %(levelname)s %(name)s %(message)s"}},
}
