"""The intake's cursor: on PostgreSQL, one that binds parameters on the server.

Django's psycopg 3 cursors bind on the client: every value is quoted into the SQL text, which was about a
third of the CPU the intake's two statements cost the web process (psycopg's literal dumpers, per value, per
delivery). A server-binding cursor sends the statement once as text with $n placeholders (converted once
and cached by psycopg) and the values beside it. Nothing is prepared (Django keeps prepared statements off
for connection poolers, and so does this), and the cursor is wrapped as Django wraps its own, so query
logging, CaptureQueriesContext, error translation and the health check behave as with connection.cursor().
Any other database, or psycopg 2, gets connection.cursor().
"""

from __future__ import annotations


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
        return connection._prepare_cursor(ServerBindingCursor(connection.connection))
