"""The intake's cursor: on PostgreSQL, one that binds parameters on the server and prepares its statements.

Django's psycopg 3 cursors bind on the client: every value is quoted into the SQL text, which was about a
third of the CPU the intake's two statements cost the web process (psycopg's literal dumpers, per value, per
delivery), and the server parses, analyses and plans the text anew each time, which was about half of the
database's CPU per delivery. A server-binding cursor sends the statement with $n placeholders (converted once
and cached by psycopg) and the values beside it; prepared, it is parsed once per connection and its plan
reused (BENCHMARKS.md §4, benchmarks/intake_ab.py).

Django keeps prepared statements off by default because a pooler in transaction mode (PgBouncer before 1.21,
or with max_prepared_statements = 0) may run the next statement on a server connection that never saw the
PREPARE. Behind one, set WEBHOOK_INTAKE_PREPARED=0, or DISABLE_SERVER_SIDE_CURSORS in the database settings
(what Django's documentation asks for behind such a pooler), and the statements are bound on the server but not
prepared. Only this cursor prepares: Django's own cursors bind on the client, and psycopg never prepares those.

The cursor is wrapped as Django wraps its own, so query logging, CaptureQueriesContext, error translation and
the health check behave as with connection.cursor(). Any other database, or psycopg 2, gets connection.cursor().
"""

from __future__ import annotations

from django.conf import settings


def prepared_statements_allowed(connection) -> bool:
    return bool(getattr(settings, "WEBHOOK_INTAKE_PREPARED", True)) and not connection.settings_dict.get(
        "DISABLE_SERVER_SIDE_CURSORS")


def _prepare_threshold(connection) -> int | None:
    """0 (prepare on first use) or None (never), for this connection as it is now.

    Not while the connection logs its queries (DEBUG, CaptureQueriesContext): psycopg keeps the SQL text
    Django logs only for statements it did not prepare."""
    if connection.queries_logged or not prepared_statements_allowed(connection):
        return None
    return 0


def intake_cursor(connection):
    if connection.vendor != "postgresql":
        return connection.cursor()
    try:
        from django.db.backends.postgresql.base import ServerBindingCursor
    except ImportError:  # psycopg 2: Django has no server-binding cursor for it
        return connection.cursor()
    # As BaseDatabaseWrapper._cursor() does, with this cursor class instead of the connection's factory.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = connection.connection
        if "prepare_threshold" not in connection.settings_dict.get("OPTIONS", {}):
            # Django opened the connection with prepared statements off (prepare_threshold None). On, they
            # apply to server-binding cursors only (psycopg never prepares for Django's client-binding ones),
            # i.e. to this one. A threshold set in the database OPTIONS is the operator's and left alone.
            raw.prepare_threshold = _prepare_threshold(connection)
        return connection._prepare_cursor(ServerBindingCursor(raw))
