"""Database helpers shared by the bridge and its sandbox emulators."""

from django.db import connections, router


def rows_update(model, rows: list, field_names: list[str]) -> None:
    """Save these fields of these rows as one executemany of `UPDATE ... WHERE pk = %s`.

    The same rows as Model.objects.bulk_update, without its CASE WHEN per row and column, whose SQL
    compilation cost more than the rest of the work in the bridge's ledger writes and the emulated
    Ortto's merges.
    """
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    fields = [model._meta.get_field(name) for name in field_names]
    quote = connection.ops.quote_name
    sql = "UPDATE {} SET {} WHERE {} = %s".format(
        quote(model._meta.db_table), ", ".join(f"{quote(f.column)} = %s" for f in fields), quote(model._meta.pk.column)
    )
    params = [[f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields] + [row.pk] for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
