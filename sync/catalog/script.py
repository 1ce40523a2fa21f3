"""The product journeys' part of the storefront script (sync/tracking.py installs it inside Ortto's tracking
script, so it runs only where that does: storefront pages, for shoppers whose cookie consent allows
analytics).

On a product page (an element with `data-product-id`, as Stencil themes render the product form; also
`data-entity-id` on `.productView`) it:
- asks the storefront's Current Customer API (`/customer/current.jwt?app_client_id=...`, current_customer.yml)
  for the signed-in shopper's JWT and posts it with the product id to the bridge's `viewed/` endpoint: a guest
  gets a 401 there and nothing is sent (Ortto's own tracking has them);
- on a sold-out product (`data-product-stock="0"`, or a disabled add-to-cart button) shows a small "E-mail me when
  it's back" form that posts to the bridge's `back-in-stock/` endpoint.
"""

from __future__ import annotations

import json

from django.conf import settings

from sync.catalog.preferences import DEFAULT_CONSENT_TEXT


def _js(value: str) -> str:
    """A JS string literal safe inside an inline <script>: JSON-quoted, `<`, `>` and `&` as \\u escapes, so no
    wording can close the script tag or open a comment."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def product_journeys_js(*, store_hash: str, consent_text: str = DEFAULT_CONSENT_TEXT) -> str:
    base = f"{settings.PUBLIC_URL.rstrip('/')}/storefront/{store_hash}/"
    current = settings.BIGCOMMERCE_CURRENT_CUSTOMER_URL.format(store_hash=store_hash)
    return (
        "(function() {\n"
        f"  var base = {_js(base)}, current = {_js(current)}, client = {_js(settings.BIGCOMMERCE_CLIENT_ID)};\n"
        f"  var consent = {_js(consent_text)};\n"
        "  function post(path, data) {\n"
        "    return fetch(base + path, {method: 'POST', body: new URLSearchParams(data), credentials: 'omit'});\n"
        "  }\n"
        "  function start() {\n"
        "    var el = document.querySelector('[data-product-id]') || document.querySelector('.productView[data-entity-id]');\n"
        "    if (!el) return;\n"
        "    var pid = el.getAttribute('data-product-id') || el.getAttribute('data-entity-id');\n"
        "    var vid = el.getAttribute('data-variant-id') || '0';\n"
        "    fetch(current + '?app_client_id=' + encodeURIComponent(client), {credentials: 'same-origin'})\n"
        "      .then(function(r) { return r.ok ? r.json() : null; })\n"
        "      .then(function(t) { var token = t && (typeof t === 'string' ? t : t.token);\n"
        "        if (token) post('viewed/', {token: token, product_id: pid}); })\n"
        "      .catch(function() {});\n"
        "    var button = document.querySelector('#form-action-addToCart');\n"
        "    if (el.getAttribute('data-product-stock') !== '0' && !(button && button.disabled)) return;\n"
        "    var form = document.createElement('form'); form.className = 'ortto-bridge-stock';\n"
        "    form.innerHTML = '<p><strong>E-mail me when it\\'s back</strong></p>' +\n"
        "      '<input type=\"email\" name=\"email\" required placeholder=\"Your e-mail\" aria-label=\"Your e-mail\"> ' +\n"
        "      '<label><input type=\"checkbox\" name=\"consent\" value=\"1\" required> <span></span></label> ' +\n"
        "      '<button type=\"submit\">Notify me</button> <span role=\"status\"></span>';\n"
        "    form.querySelector('label span').textContent = consent;\n"
        "    form.addEventListener('submit', function(event) {\n"
        "      event.preventDefault();\n"
        "      var status = form.querySelector('[role=status]');\n"
        "      post('back-in-stock/', {email: form.email.value, consent: form.consent.checked ? '1' : '',\n"
        "                              consent_text: consent, product_id: pid, variant_id: vid})\n"
        "        .then(function(r) { return r.json(); })\n"
        "        .then(function(answer) { status.textContent = answer.message; })\n"
        "        .catch(function() { status.textContent = 'Something went wrong. Try again later.'; });\n"
        "    });\n"
        "    el.parentNode.insertBefore(form, el.nextSibling);\n"
        "  }\n"
        "  if (document.readyState !== 'loading') start(); else document.addEventListener('DOMContentLoaded', start);\n"
        "})();\n"
    )
