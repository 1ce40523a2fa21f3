"""The store's catalog mirror: products and their variants (name, storefront URL, main image, price, sale
price, stock, availability) as the v3 catalog answers them (products_catalog.v3.yml, getProducts with
`include=variants,primary_image`), read through the store's BigCommerce client, which paces itself inside the
store's quota (stores/bigcommerce.py).

- A full or initial run reads the whole catalog before its orders, so its Ordered product activities carry
  links; a sweep reads what changed since the newest `date_modified` the mirror holds (a minute earlier);
- a webhook run re-reads by id the products that store/product/* and store/sku/* deliveries named; a product
  the catalog no longer answers is marked deleted, never removed: activities still send what is known.

Each read answers which variants came back in stock (stock was 0 or less, now above 0): sync/catalog/journeys.py
releases their waiting shoppers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from stores.bigcommerce import BigCommerceClient
from sync.engine.mapping import parse_bc_datetime
from sync.models import CatalogProduct, CatalogVariant

# BigCommerce's date filters are inclusive and its clock is not ours: a sweep re-reads the last minute.
OVERLAP = timedelta(seconds=60)
# Product ids per by-id read (id:in); well under a URL's length.
IDS_PER_READ = 50


@dataclass(frozen=True)
class ProductFacts:
    """What a product activity shows of a product (empty strings where the mirror knows nothing)."""

    name: str = ""
    url: str = ""
    image_url: str = ""
    price: Decimal | None = None
    sale_price: Decimal | None = None


def storefront_url(store, path: str) -> str:
    """customUrl_Full.url is relative to the storefront (settings.BIGCOMMERCE_STOREFRONT_URL)."""
    if not path:
        return ""
    if path.startswith(("http://", "https://")):
        return path
    base = settings.BIGCOMMERCE_STOREFRONT_URL.format(
        domain=store.domain or f"store-{store.store_hash}.mybigcommerce.com", store_hash=store.store_hash)
    return base.rstrip("/") + "/" + path.lstrip("/")


def _money(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _int(value, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _options(variant: dict) -> str:
    values = [f"{o.get('option_display_name')}: {o.get('label')}" for o in variant.get("option_values") or []
              if isinstance(o, dict) and o.get("option_display_name")]
    return ", ".join(values)[:255]


def _product_row(store, product: dict) -> CatalogProduct:
    image = product.get("primary_image") if isinstance(product.get("primary_image"), dict) else {}
    custom_url = product.get("custom_url") if isinstance(product.get("custom_url"), dict) else {}
    return CatalogProduct(
        store=store, product_id=int(product["id"]), name=str(product.get("name") or "")[:255],
        url=storefront_url(store, str(custom_url.get("url") or ""))[:1000],
        image_url=str(image.get("url_standard") or image.get("url_zoom") or "")[:1000],
        price=_money(product.get("price")), sale_price=_money(product.get("sale_price")),
        inventory_level=_int(product.get("inventory_level")),
        inventory_tracking=str(product.get("inventory_tracking") or "")[:10],
        availability=str(product.get("availability") or "")[:10],
        bc_modified_at=parse_bc_datetime(product.get("date_modified")), deleted_at=None)


def _in_stock(tracking: str, availability: str, level: int, *, disabled: bool = False) -> bool:
    """Buyable now: available, not disabled, and stock above 0 unless the store does not track it."""
    if availability == "disabled" or disabled:
        return False
    return tracking == "none" or level > 0


def _stock_states(product: CatalogProduct, variants) -> dict[tuple[int, int], bool]:
    """(product id, variant id) -> buyable now; variant id 0 stands for the product itself."""
    states = {(product.product_id, 0): product.deleted_at is None and _in_stock(
        product.inventory_tracking, product.availability, product.inventory_level)}
    for variant in variants:
        level = variant.inventory_level if product.inventory_tracking == "variant" else product.inventory_level
        states[(product.product_id, variant.variant_id)] = product.deleted_at is None and _in_stock(
            product.inventory_tracking, product.availability, level, disabled=variant.purchasing_disabled)
    return states


def mirror_apply(store, products: list[dict]) -> set[tuple[int, int]]:
    """Upsert the products and their variants; answer the (product id, variant id) pairs that came back in stock
    (variant id 0: the product itself). A product seen for the first time restocks nothing."""
    products = [p for p in products if isinstance(p, dict) and _int(p.get("id")) > 0]
    if not products:
        return set()
    restocked: set[tuple[int, int]] = set()
    ids = [int(p["id"]) for p in products]
    with transaction.atomic():
        known = {row.product_id: row for row in CatalogProduct.objects.select_for_update()
                 .filter(store=store, product_id__in=ids).prefetch_related("variants")}
        for product in products:
            row = _product_row(store, product)
            old = known.get(row.product_id)
            before = _stock_states(old, old.variants.all()) if old is not None else {}
            if old is not None:
                row.pk = old.pk
            row.save()
            variants = []
            for variant in product.get("variants") or []:
                if not isinstance(variant, dict) or _int(variant.get("id")) <= 0:
                    continue
                saved, _ = CatalogVariant.objects.update_or_create(product=row, variant_id=int(variant["id"]), defaults={
                    "sku": str(variant.get("sku") or "")[:255], "options": _options(variant),
                    "image_url": str(variant.get("image_url") or "")[:1000],
                    "price": _money(variant.get("price")), "sale_price": _money(variant.get("sale_price")),
                    "inventory_level": _int(variant.get("inventory_level")),
                    "purchasing_disabled": bool(variant.get("purchasing_disabled"))})
                variants.append(saved)
            if "variants" in product:
                CatalogVariant.objects.filter(product=row).exclude(variant_id__in=[v.variant_id for v in variants]).delete()
            else:
                variants = list(row.variants.all())
            for key, buyable in _stock_states(row, variants).items():
                if buyable and before.get(key) is False:
                    restocked.add(key)
    return restocked


@dataclass(frozen=True)
class PageRead:
    """One page of a catalog read: products read, variants restocked, the last product id (where the next
    page starts) and whether it was the last page."""

    read: int
    restocked: set
    last_id: int
    done: bool


def mirror_read_page(store, client: BigCommerceClient, *, after_id: int = 0,
                     modified_since: datetime | None = None) -> PageRead:
    """Read and apply the page of products (changed since `modified_since`) after product `after_id`, by
    ascending id (`id:greater`): a run keeps `last_id` in its checkpoint and resumes from there."""
    answer = client.catalog_products_page(after_id=after_id or None, modified_since=modified_since)
    restocked = mirror_apply(store, answer.items)
    ids = [_int(p.get("id")) for p in answer.items]
    last_id = max([after_id, *ids])
    return PageRead(read=len(answer.items), restocked=restocked, last_id=last_id,
                    done=not answer.items or answer.next_page is None or last_id <= after_id)


def mirror_read_all(store, client: BigCommerceClient, *, modified_since: datetime | None = None) -> tuple[int, set]:
    """Read every product (changed since `modified_since`) page by page; answer (products read, restocked)."""
    after, read, restocked = 0, 0, set()
    while True:
        page = mirror_read_page(store, client, after_id=after, modified_since=modified_since)
        read, restocked, after = read + page.read, restocked | page.restocked, page.last_id
        if page.done:
            return read, restocked


def mirror_since(store) -> datetime | None:
    """Where a sweep starts: the newest change the mirror holds, a minute earlier (None: read everything)."""
    newest = (CatalogProduct.objects.filter(store=store, bc_modified_at__isnull=False)
              .order_by("-bc_modified_at").values_list("bc_modified_at", flat=True).first())
    return newest - OVERLAP if newest else None


def mirror_refresh(store, client: BigCommerceClient, product_ids) -> tuple[int, set]:
    """Re-read these products by id; one the catalog no longer answers is marked deleted."""
    ids = sorted({int(i) for i in product_ids if _int(i) > 0})
    read, restocked = 0, set()
    for start in range(0, len(ids), IDS_PER_READ):
        chunk = ids[start:start + IDS_PER_READ]
        page, found = 1, set()
        while page:
            answer = client.catalog_products_page(page=page, ids=chunk)
            restocked |= mirror_apply(store, answer.items)
            found |= {_int(p.get("id")) for p in answer.items}
            read += len(answer.items)
            page = answer.next_page if answer.items else None
        gone = set(chunk) - found
        if gone:
            CatalogProduct.objects.filter(store=store, product_id__in=gone, deleted_at__isnull=True).update(
                deleted_at=timezone.now())
    return read, restocked


def product_facts(store, product_ids) -> dict[int, ProductFacts]:
    """The mirror's facts for these products (deleted ones included: what is known)."""
    ids = {int(i) for i in product_ids if _int(i) > 0}
    if not ids:
        return {}
    return {row["product_id"]: ProductFacts(name=row["name"], url=row["url"], image_url=row["image_url"],
                                            price=row["price"], sale_price=row["sale_price"])
            for row in CatalogProduct.objects.filter(store=store, product_id__in=ids)
            .values("product_id", "name", "url", "image_url", "price", "sale_price")}


def variant_in_stock(store, product_id: int, variant_id: int = 0) -> bool | None:
    """Whether the mirror says this variant (or product, variant 0) can be bought now; None when unknown."""
    product = CatalogProduct.objects.filter(store=store, product_id=product_id, deleted_at__isnull=True).first()
    if product is None:
        return None
    if variant_id and product.inventory_tracking == "variant":
        variant = product.variants.filter(variant_id=variant_id).first()
        if variant is None:
            return None
        return _in_stock(product.inventory_tracking, product.availability, variant.inventory_level,
                         disabled=variant.purchasing_disabled)
    return _in_stock(product.inventory_tracking, product.availability, product.inventory_level)


def facts_for(ctx, product_ids) -> dict[int, ProductFacts]:
    """product_facts through a per-run memo on the sync context: an import's orders name the same products
    again and again, so each product costs one query per run at most."""
    memo = ctx.__dict__.setdefault("_catalog_facts", {})
    wanted = {int(i) for i in product_ids if _int(i) > 0}
    missing = wanted - memo.keys()
    if missing:
        found = product_facts(ctx.store, missing)
        memo.update({pid: found.get(pid) for pid in missing})
    return {pid: memo[pid] for pid in wanted if memo.get(pid) is not None}


def variant_facts(store, product_ids) -> dict[tuple[int, int], dict]:
    """(product id, variant id) -> {"sku", "variant"} from the mirror, for activities whose event named none."""
    ids = {int(i) for i in product_ids if _int(i) > 0}
    return {(row["product__product_id"], row["variant_id"]): {"sku": row["sku"], "variant": row["options"]}
            for row in CatalogVariant.objects.filter(product__store=store, product__product_id__in=ids)
            .values("product__product_id", "variant_id", "sku", "options")}
