"""Retention by count per tier, driven over simulated time through the pure selection function."""
from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest

DAY = 86400
START = dt.datetime(2024, 1, 1, 2, 30, tzinfo=dt.UTC).timestamp()


@dataclasses.dataclass(eq=False)
class Item:
    ts: float
    verified: bool
    name: str = ""


def day_of(ts):
    return dt.datetime.fromtimestamp(ts, dt.UTC).date()


def expected_keep(items, policy):
    """An independent statement of the policy: newest per bucket, newest N buckets per tier."""
    verified = sorted((i for i in items if i.verified), key=lambda i: i.ts, reverse=True)
    keep = {id(verified[0])} if verified else set()
    buckets = {
        "daily": lambda d: d.isoformat(),
        "weekly": lambda d: tuple(d.isocalendar())[:2],
        "monthly": lambda d: (d.year, d.month),
    }
    for tier, key in buckets.items():
        newest_per_bucket = {}
        for i in verified:
            newest_per_bucket.setdefault(key(day_of(i.ts)), i)
        for period in sorted(newest_per_bucket, reverse=True)[: policy[tier]]:
            keep.add(id(newest_per_bucket[period]))
    return keep


POLICIES = [
    {"daily": 7, "weekly": 4, "monthly": 6},
    {"daily": 1, "weekly": 0, "monthly": 0},
    {"daily": 0, "weekly": 0, "monthly": 0},
    {"daily": 3, "weekly": 8, "monthly": 12},
    {"daily": 30, "weekly": 0, "monthly": 24},
]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: f"d{p['daily']}-w{p['weekly']}-m{p['monthly']}")
@pytest.mark.parametrize("failure_rate", [0.0, 0.08, 0.3])
def test_400_days_of_daily_backups(tool, policy, failure_rate):
    rng = random.Random(f"{policy}-{failure_rate}")
    present: list[Item] = []   # backups on disk
    history: list[Item] = []   # every verified backup ever made
    blocked_days = 0
    for day in range(400):
        for extra in range(2 if day % 9 == 0 else 1):  # some days have two backups
            ts = START + day * DAY + extra * 3600 + rng.randint(0, 600)
            ok = rng.random() >= failure_rate
            attempt = Item(ts, ok, f"day{day}.{extra}")
            items = present + ([] if ok else [attempt])
            if ok:
                present.append(attempt)
                history.append(attempt)
                items = list(present)
            decision = tool.select_retention(items, policy)
            newest_verified = max((i for i in present), key=lambda i: i.ts, default=None)
            deleted = decision.delete
            if not ok:
                assert deleted == [], "pruned after a failed newest attempt"
                assert decision.blocked and "failed" in decision.blocked
                blocked_days += 1
            else:
                assert decision.blocked is None
                kept_ids = {id(i) for i, _ in decision.keep}
                assert kept_ids == expected_keep(present, policy)
                assert kept_ids.isdisjoint(id(i) for i in deleted)
                assert kept_ids | {id(i) for i in deleted} == {id(i) for i in present}
            if newest_verified is not None:
                assert newest_verified not in deleted
                assert any(i is newest_verified and "newest" in r for i, r in decision.keep)
            assert all(i.verified for i in deleted)
            present = [i for i in present if i not in deleted]

    # after 400 days (and one more prune, in case the last attempt failed) the set on disk is
    # exactly what the policy says about the whole history: delayed deletions catch up
    final = tool.select_retention(present, policy)
    present = [i for i in present if i not in final.delete]
    assert {id(i) for i in present} == expected_keep(history, policy)
    buckets = {
        "daily": {day_of(i.ts) for i in history},
        "weekly": {tuple(day_of(i.ts).isocalendar())[:2] for i in history},
        "monthly": {(day_of(i.ts).year, day_of(i.ts).month) for i in history},
    }
    tiers = {t: sum(1 for _, r in final.keep if t in r) for t in buckets}
    for tier, periods in buckets.items():
        assert tiers[tier] == min(policy[tier], len(periods)), (tier, tiers)
    assert 1 <= len(present) <= 1 + sum(policy.values())
    if failure_rate:
        assert blocked_days > 0


def test_small_table(tool):
    # three backups on one day, one on the previous day: daily=2 keeps the newest of each day
    t = START
    a, b, c, d = Item(t, True, "a"), Item(t + DAY, True, "b"), Item(t + DAY + 60, True, "c"), Item(t + DAY + 120, True, "d")
    decision = tool.select_retention([a, b, c, d], {"daily": 2, "weekly": 0, "monthly": 0})
    assert [i.name for i, _ in decision.keep] == ["d", "a"]
    assert [i.name for i in decision.delete] == ["c", "b"]
    # newest attempt failed: nothing deleted, even with a policy of zero
    failed = Item(t + 2 * DAY, False, "failed")
    decision = tool.select_retention([a, b, c, d, failed], {"daily": 0, "weekly": 0, "monthly": 0})
    assert decision.delete == [] and "failed" in decision.blocked
    # an older failure does not block
    decision = tool.select_retention([Item(t - DAY, False), a, b], {"daily": 0, "weekly": 0, "monthly": 0})
    assert [i.name for i in decision.delete] == ["a"] and [i.name for i, _ in decision.keep] == ["b"]
    # no verified backup at all: nothing to delete
    assert tool.select_retention([], {"daily": 1, "weekly": 1, "monthly": 1}).delete == []


def test_weekly_and_monthly_buckets_are_iso_week_and_calendar_month(tool):
    # Sunday 2024-03-31 and Monday 2024-04-01: different ISO weeks and months
    sun = dt.datetime(2024, 3, 31, 23, 0, tzinfo=dt.UTC).timestamp()
    mon = dt.datetime(2024, 4, 1, 1, 0, tzinfo=dt.UTC).timestamp()
    sat = dt.datetime(2024, 3, 30, 1, 0, tzinfo=dt.UTC).timestamp()
    items = [Item(sat, True, "sat"), Item(sun, True, "sun"), Item(mon, True, "mon")]
    weekly = tool.select_retention(items, {"daily": 0, "weekly": 2, "monthly": 0})
    assert sorted(i.name for i, _ in weekly.keep) == ["mon", "sun"]
    monthly = tool.select_retention(items, {"daily": 0, "weekly": 0, "monthly": 2})
    assert sorted(i.name for i, _ in monthly.keep) == ["mon", "sun"]
    assert [i.name for i in monthly.delete] == ["sat"]


def test_prune_command_dry_run_and_unrecognised_files(env):
    """prune via the CLI: --dry-run deletes nothing; foreign files, orphan manifests untouched."""
    env.write_config(retention={"daily": 1, "weekly": 0, "monthly": 0})
    for _ in range(3):
        assert env.call("backup").rc == 0
    (env.backups / "notes.txt").write_text("operator notes")
    (env.backups / "moneytracker-20200101T000000Z.db.zst.manifest.json").write_text("{}")
    (env.backups / "moneytracker-20200102T000000Z.db.zst").write_bytes(b"no manifest")
    before = sorted(p.name for p in env.backups.iterdir())
    r = env.call("prune", "--dry-run", "--json")
    assert r.rc == 0 and len(r.data["would_delete"]) == 2
    assert sorted(p.name for p in env.backups.iterdir()) == before
    r = env.call("prune", "--json")
    assert r.rc == 0 and len(r.data["deleted"]) == 2
    after = {p.name for p in env.backups.iterdir()}
    assert {"notes.txt", "moneytracker-20200101T000000Z.db.zst.manifest.json",
            "moneytracker-20200102T000000Z.db.zst"} <= after
    assert len(env.backups_with_manifest()) == 1
    listed = env.call("list", "--json").data["backups"]
    assert [b["verified"] for b in listed] == [True, False]
    assert listed[0]["kept_by"] == ["newest", "daily"] and listed[1]["problem"] == "no manifest"
