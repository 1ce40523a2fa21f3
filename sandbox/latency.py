"""How long the emulated APIs take to answer: a configurable latency with jitter, off by default.

Real answers take hundreds of milliseconds (issue 23: a BigCommerce page of 250 about 0.5 s, an Ortto merge of
100 a few hundred ms); at loopback speed the bridge's waiting never shows. SANDBOX_BIGCOMMERCE_LATENCY_MS and
SANDBOX_ORTTO_LATENCY_MS set the mean, SANDBOX_LATENCY_JITTER (default 0.2) the spread: each answer takes the
mean times a uniform factor in [1 - jitter, 1 + jitter].

The wait is a sleep in the request's thread: it costs no CPU, but it holds one of the server's threads, so the
server must have more threads than answers in flight (the benchmark's emulator runs 2 workers x 64 threads
when a latency is set; pytest's live server starts one thread per request).
"""

import random
import time

from django.conf import settings

_rng = random.Random()


def answer_seconds(mean_ms: float, *, jitter: float | None = None, rng: random.Random = _rng) -> float:
    """One answer's latency in seconds: mean_ms x a uniform factor in [1 - jitter, 1 + jitter]."""
    if not mean_ms or mean_ms <= 0:
        return 0.0
    jitter = getattr(settings, "SANDBOX_LATENCY_JITTER", 0.2) if jitter is None else jitter
    jitter = min(max(float(jitter), 0.0), 1.0)
    return mean_ms / 1000 * rng.uniform(1 - jitter, 1 + jitter)


def bigcommerce_mean_ms() -> float:
    return float(getattr(settings, "SANDBOX_BIGCOMMERCE_LATENCY_MS", 0) or 0)


def ortto_mean_ms(instance_latency_ms: int = 0) -> float:
    """An Ortto instance's own latency (control endpoint `latency_ms`) wins over the setting."""
    return float(instance_latency_ms or getattr(settings, "SANDBOX_ORTTO_LATENCY_MS", 0) or 0)


def pause(mean_ms: float) -> None:
    seconds = answer_seconds(mean_ms)
    if seconds:
        time.sleep(seconds)
