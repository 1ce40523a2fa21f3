"""manage.py ortto_check <account id or name> [--apply]: the preflight for a real Ortto account."""

from django.core.management.base import BaseCommand, CommandError

from sync.connect.preflight import ortto_account_check, ortto_account_find


class Command(BaseCommand):
    help = ("Check an Ortto account before connecting a store: key and region, the custom fields and activity "
            "definition the bridge needs. Creates nothing without --apply. Exits 1 when not ready.")

    def add_arguments(self, parser):
        parser.add_argument("account", help="OrttoAccount id, instance name or business name")
        parser.add_argument("--apply", action="store_true", help="create the missing fields and the definition")

    def handle(self, *args, **options):
        account = ortto_account_find(reference=options["account"])
        if account is None:
            raise CommandError(f"No single Ortto account matches {options['account']!r}.")
        report = ortto_account_check(account=account, apply=options["apply"])
        for line in report.lines:
            self.stdout.write(line)
        style = self.style.SUCCESS if report.ready else self.style.ERROR
        self.stdout.write(style(report.verdict))
        if not report.ready:
            raise SystemExit(1)
