"""The Django admin of sync: support staff's view of connections, runs, events and ledgers.

Django's autodiscovery imports this package; importing the modules registers their ModelAdmins.
site.py registers the core pages (and the Store page with its sync, store.py); incidents.py and
organizations.py build on site.py's helpers; the erasure records' page is consent's (sync/consent/admin.py).
"""

from sync.admin import incidents, organizations, site  # noqa: F401
from sync.consent import admin as consent_admin  # noqa: F401  (Forget this email; registers ErasureRecord)
