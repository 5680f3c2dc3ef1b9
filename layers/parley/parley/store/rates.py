"""The rate limiter's state: one theoretical arrival time (`tat`, GCRA) per user and action (`bucket`),
compare-and-set."""

from __future__ import annotations

from parley.store import items, keys
from parley.store.calls import ConditionFailed, attempt, call, unwrap, written
from parley.store.tables import TableAccess


class RateStore(TableAccess):
    def claim_rate_if_idle(
        self,
        workspace: str,
        user_id: str,
        now_ms: int,
        new: int,
        expires_at_s: int,
        *,
        bucket: str = "message",
    ) -> int | None:
        """Store `new` as the limiter state if the stored one is absent or not after `now_ms` (a user
        sending within their rate, the usual case: one write). Otherwise write nothing and return the
        stored state, for `save_rate_state`'s compare-and-set. None when written."""
        outcome = attempt(
            self._state.put_item,
            Item=items.rate_item(workspace, user_id, new, expires_at_s, bucket),
            ConditionExpression="attribute_not_exists(tat) OR tat <= :now",
            ExpressionAttributeValues={":now": now_ms},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if not isinstance(outcome, ConditionFailed):
            unwrap(outcome)
            return None
        if outcome.old_item is not None and "tat" in outcome.old_item:
            return items.tat_from_item(outcome.old_item)
        # The condition failed yet no old item came back (an endpoint without ReturnValuesOnCondition-
        # CheckFailure): read it. Gone meanwhile means idle again; the caller's compare-and-set decides.
        return self.rate_state(workspace, user_id, bucket=bucket) or now_ms

    def rate_state(self, workspace: str, user_id: str, *, bucket: str = "message") -> int | None:
        item = call(self._state.get_item, Key=keys.rate_key(workspace, user_id, bucket)).get("Item")
        return None if item is None else items.tat_from_item(item)

    def save_rate_state(
        self,
        workspace: str,
        user_id: str,
        old: int | None,
        new: int,
        expires_at_s: int,
        *,
        bucket: str = "message",
    ) -> bool:
        """Compare-and-set the limiter state, so a user's concurrent connections cannot overspend."""
        item = items.rate_item(workspace, user_id, new, expires_at_s, bucket)
        if old is None:
            return written(self._state.put_item, Item=item, ConditionExpression="attribute_not_exists(tat)")
        return written(
            self._state.put_item,
            Item=item,
            ConditionExpression="tat = :old",
            ExpressionAttributeValues={":old": old},
        )
