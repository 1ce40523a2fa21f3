"""Who may move the store's data: the owner, and the store users the owner allows, connect, reconnect and
disconnect; everyone else sees the connection read-only. Every change is recorded (the app page's
Connection history) and mailed to the owner.

One rule (connection_manager_may) is asked by the app page before it offers a Connect link, by every
connect-flow step that changes state, and by the connect and disconnect services themselves.
"""

from django.utils import timezone

from stores.models import Store, StoreUser
from stores.services import store_user_label
from sync.mail import owner_mail_send, store_owner_email
from sync.models import ConnectionChange, ConnectionManager, MergeStrategy

# What the owner sees of the past on the app page; the full record stays in the table.
HISTORY_ROWS = 5

NOT_ALLOWED = ("Only the store owner, and users the owner allows on the app page, can connect, reconnect or "
               "disconnect this store.")


def _store_user(*, store: Store, bc_user_id: int) -> StoreUser | None:
    if not store.is_installed:
        return None
    return StoreUser.objects.filter(store=store, bc_user_id=bc_user_id, is_active=True).first()


def _grant_counts(user: StoreUser, granted_at) -> bool:
    # A grant from before the user's last removal stays dead when BigCommerce adds them back.
    return granted_at is not None and (user.removed_at is None or granted_at > user.removed_at)


def connection_manager_may(*, store: Store, bc_user_id: int) -> bool:
    """The rule: an active user of the installed store who is its owner or whom the owner allowed."""
    user = _store_user(store=store, bc_user_id=bc_user_id)
    if user is None:
        return False
    granted_at = ConnectionManager.objects.filter(store=store, bc_user_id=bc_user_id).values_list(
        "granted_at", flat=True).first()
    return user.is_owner or _grant_counts(user, granted_at)


def connection_manager_set(*, store: Store, by_bc_user_id: int, bc_user_id: int, allowed: bool) -> str:
    """The owner allows (or stops allowing) another user of the store to manage the connection.
    Returns a refusal message, or "" when done."""
    owner = _store_user(store=store, bc_user_id=by_bc_user_id)
    if owner is None or not owner.is_owner:
        return "Only the store owner can choose who manages the connection."
    target = _store_user(store=store, bc_user_id=bc_user_id)
    if target is None or target.is_owner:
        return "That person is not another user of this store."
    if allowed:
        ConnectionManager.objects.update_or_create(
            store=store, bc_user_id=bc_user_id,
            defaults={"granted_by": owner.email or f"bc-user:{owner.bc_user_id}", "granted_at": timezone.now()})
    else:
        ConnectionManager.objects.filter(store=store, bc_user_id=bc_user_id).delete()
    return ""


def connection_authority(*, store: Store, bc_user_id: int) -> dict:
    """What the app page shows about who may change the connection, as plain data: whether this user may,
    the owner's address, for the owner the other users with their grant, and the recent changes."""
    is_owner = StoreUser.objects.filter(store=store, bc_user_id=bc_user_id, is_active=True, is_owner=True).exists()
    users = []
    if is_owner:
        granted = dict(ConnectionManager.objects.filter(store=store).values_list("bc_user_id", "granted_at"))
        users = [
            {"bc_user_id": user.bc_user_id, "email": user.email or f"bc-user:{user.bc_user_id}",
             "manages": _grant_counts(user, granted.get(user.bc_user_id))}
            for user in StoreUser.objects.filter(store=store, is_active=True, is_owner=False).order_by("email", "pk")
        ]
    history = [
        {"kind": change.get_kind_display(), "by": change.by_email, "signin": change.signin_email,
         "account": change.account_name, "at": change.created_at.isoformat(),
         "at_label": change.created_at.strftime("%Y-%m-%d %H:%M UTC")}
        for change in ConnectionChange.objects.filter(store=store)[:HISTORY_ROWS]
    ]
    return {
        "may_manage": connection_manager_may(store=store, bc_user_id=bc_user_id),
        "is_owner": is_owner,
        "owner_email": store_owner_email(store=store),
        "users": users,
        "history": history,
    }


def connection_change_record(*, store: Store, kind: str, by_bc_user_id: int, account_name: str,
                             signin_email: str = "", merge_strategy: int | None = None) -> ConnectionChange:
    """Record one change of the store's connection and mail the owner about it (after commit)."""
    change = ConnectionChange.objects.create(
        store=store, kind=kind, by_email=store_user_label(store=store, bc_user_id=by_bc_user_id),
        by_bc_user_id=by_bc_user_id, signin_email=signin_email, account_name=account_name,
        merge_strategy=merge_strategy, created_at=timezone.now(),
    )
    owner_mail_send(store=store, subject=_subject(change), body=_body(change))
    return change


SUBJECTS = {
    ConnectionChange.Kind.CONNECTED: "{store} was connected to {account}",
    ConnectionChange.Kind.RECONNECTED: "{store} was reconnected to {account}",
    ConnectionChange.Kind.STRATEGY_CHANGED: "{store}: the merge strategy into {account} changed",
    ConnectionChange.Kind.SWITCHED: "{store} was moved to another Ortto account, {account}",
    ConnectionChange.Kind.DISCONNECTED: "{store} was disconnected from {account}",
}


def _subject(change: ConnectionChange) -> str:
    store_name = change.store.name or change.store.store_hash
    return "Ortto Bridge: " + SUBJECTS[change.kind].format(store=store_name, account=change.account_name)


def _body(change: ConnectionChange) -> str:
    store = change.store
    lines = [
        f"{change.get_kind_display()}: your BigCommerce store {store.name or store.store_hash} "
        f"({store.store_hash}) and Ortto.",
        "",
        f"Who: {change.by_email} (a user of your store)",
    ]
    if change.signin_email:
        lines.append(f"Ortto Bridge sign-in: {change.signin_email}")
    lines.append(f"Ortto account: {change.account_name}")
    if change.merge_strategy:
        lines.append(f"Merge: {MergeStrategy(change.merge_strategy).label}")
    lines += [
        f"When: {change.created_at.strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        "If you did not expect this, open Ortto Bridge from Apps › My Apps in your BigCommerce control panel: "
        "you can Disconnect there, and choose which of your store's users may manage the connection.",
    ]
    return "\n".join(lines)
