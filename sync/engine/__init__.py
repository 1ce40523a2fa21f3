"""The sync engine: reads the store's records page by page and writes Ortto people and activities.

- runs.py: a run from start to end: slices, checkpoints, the commit of each unit (docs/design.md §4);
- bigcommerce_pages.py: reading BigCommerce's pages (read-ahead, windows, carried records);
- context.py: what a run carries (SyncContext), a page's local changes (PageWork), the Ortto call pool;
- planning.py (pure), sending.py, answers.py: which merges a batch of people needs, sending them, and what
  Ortto's answers mean;
- people.py: subscribers and customers; orders/: everything about orders; carts.py: abandoned carts;
  organizations.py: companies as Ortto organizations;
- mapping.py, rules.py, activities.py (pure): person fields, the subscription rules R1–R4, activity
  definitions;
- pauses.py: an Ortto account that refuses (revoked key, blocked) pauses its connections.
"""
