"""Orders, in one place.

- records.py: what an order becomes in Ortto (its buyer, Placed order, Ordered product, status activities),
  pure;
- placed.py: an order seen for the first time: its buyer merged first, its Placed order activity (at most
  50 per buyer per 24 hours), and the buyer's totals;
- journey.py: the orders resource's processor (runs.py): Placed order through placed.py, then Ordered
  product per line item and Fulfilled / Cancelled / Refunded order on status changes, exactly once, with
  the order ledger's memory; and the initial import's deferred Placed orders (placed_send).
"""
