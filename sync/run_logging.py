"""Every log line of sync work names its store and run, also lines written by code that does not know it."""

import contextvars
import logging

# The run a worker is executing, for log lines written by code that does not know it (the two API
# clients' retry lines, schema and webhook registration): every line of sync work names store and run.
run_context: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar("sync_run", default=None)


class RunContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        current = run_context.get()
        if current and isinstance(record.msg, str) and not record.msg.startswith("[store="):
            record.msg = f"[store={current[0]} run={current[1]}] {record.msg}"
        return True


# The loggers of everything a run calls. A filter on a logger (not on a handler) applies wherever the
# project's LOGGING sends the lines.
RUN_LOGGERS = ("stores.bigcommerce", "stores.http", "sync.ortto.client", "sync.ortto.schema", "sync.intake.hooks", "sync.intake.webhooks",
               "sync.tracking", "sync.engine.mapping", "sync.engine.rules", "sync.engine.runs", "sync.engine.bigcommerce_pages", "sync.engine.people")

for _name in RUN_LOGGERS:
    if not any(isinstance(f, RunContextFilter) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(RunContextFilter())
