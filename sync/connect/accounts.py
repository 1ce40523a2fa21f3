"""Ortto accounts a person can connect stores to."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from sync.models import OrttoAccount
from sync.ortto import client as ortto

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccountOutcome:
    account: OrttoAccount | None
    error: str = ""
    # The other region whose Ortto accepts the key, when the chosen one refused it.
    accepted_region: str = ""


def ortto_account_add(*, user, business_name: str, name: str, region: str, api_key: str, tracking_key: str = "") -> AccountOutcome:
    """Verify the key against the region's Ortto API before saving anything; the user becomes a member.

    Adding an account whose key is already saved (same key, same region) just adds the membership,
    so one Ortto account is not stored twice.
    """
    api_key = api_key.strip()
    region_label = OrttoAccount.Region(region).label
    try:
        ortto.OrttoClient(api_key=api_key, region=region).verify()
    except ortto.OrttoAccountBlocked:
        return AccountOutcome(
            None,
            "Ortto recognised the key but refuses access to the account (HTTP 403): it may have expired, been "
            "suspended or reached a plan limit. Check the account in Ortto, then try again.",
        )
    except ortto.OrttoAuthError:
        elsewhere = ortto_key_region_find(
            except_region=region, client_for=lambda other: ortto.OrttoClient(api_key=api_key, region=other))
        if elsewhere:
            elsewhere_label = OrttoAccount.Region(elsewhere).label
            return AccountOutcome(
                None,
                f"This key belongs to an Ortto account in the {elsewhere_label} region, not {region_label}. "
                f"Choose {elsewhere_label} as the region and add the account again.",
                accepted_region=elsewhere,
            )
        return AccountOutcome(
            None,
            f"Ortto did not accept this API key in the {region_label} region. Check that you copied the whole "
            "private key of a Custom API data source, and that the region is the one your Ortto account is in.",
        )
    except ortto.OrttoError as exc:
        logger.warning("Ortto key check failed in region %s: %s", region, exc.status)
        return AccountOutcome(None, "Ortto could not be reached to check the key. Try again in a minute.")

    with transaction.atomic():
        for existing in OrttoAccount.objects.filter(region=region, name=name).select_for_update():
            if existing.api_key == api_key:
                existing.members.add(user)
                return AccountOutcome(existing)
        account = OrttoAccount.objects.create(
            name=name, business_name=business_name.strip(), region=region, api_key=api_key,
            tracking_key=tracking_key.strip(), account_url=ortto_account_url(name=name),
        )
        account.members.add(user)
    return AccountOutcome(account)


def ortto_key_region_find(*, except_region: str, client_for) -> str | None:
    """The other region whose host accepts the key, if any (at most two more requests, both of which
    may be bad-credential answers: well under Ortto's ban of 15 in 15 s). client_for(region) gives a
    client with the key for that region. `manage.py ortto_check` and "Add an Ortto account" share it."""
    for region in OrttoAccount.Region.values:
        if region == except_region:
            continue
        try:
            client_for(region).verify()
        except ortto.OrttoError:
            continue
        return region
    return None


def ortto_account_url(*, name: str) -> str:
    return settings.ORTTO_APP_URL.format(name=name)
