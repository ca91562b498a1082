"""What a report is asked for: the period (in a time zone) and the grouping, checked.

`since` and `until` are dates (`2026-11-01`, read at midnight in the report's time zone) or
ISO datetimes; `until` as a date is inclusive (the whole day), as a datetime exclusive; without
it the period runs to the end of the current hour. The period is stored as UTC instants.
A bad value is an `InvalidRequest` naming the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.errors import InvalidRequest

TIME_GROUPS = ("hour", "day", "week", "month")
GROUPS = (*TIME_GROUPS, "team", "api_key", "model", "provider", "route", "endpoint")
UNATTRIBUTED = "unattributed"  # the team and key of a request made without a key
MAX_DAYS = 3660


@dataclass(frozen=True, slots=True)
class Period:
    since: datetime  # UTC, inclusive
    until: datetime  # UTC, exclusive
    tz: ZoneInfo

    @property
    def hours(self) -> float:
        return (self.until - self.since).total_seconds() / 3600

    def whole_hour_offsets(self) -> bool:
        """True when every local hour of the period starts on a UTC hour (no :30 zones)."""
        t = self.since
        step = timedelta(days=1)
        while t <= self.until:
            off = t.astimezone(self.tz).utcoffset() or timedelta(0)
            if off.total_seconds() % 3600:
                return False
            t += step
        off = self.until.astimezone(self.tz).utcoffset() or timedelta(0)
        return off.total_seconds() % 3600 == 0

    def on_utc_hours(self) -> bool:
        return all(t.minute == t.second == t.microsecond == 0 for t in (self.since, self.until))


def parse_tz(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(f"tz: unknown time zone {name!r}", param="tz") from None


def _instant(value: str, tz: ZoneInfo, param: str, end: bool) -> datetime:
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            if end:
                d += timedelta(days=1)
            return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)
        t = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(
            f"{param}: {value[:40]!r} is not a date (YYYY-MM-DD) or an ISO datetime", param=param
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz)
    return t.astimezone(UTC)


def parse_period(
    since: str | None, until: str | None = None, tz: str | None = None, now: datetime | None = None
) -> Period:
    zone = parse_tz(tz)
    if not since:
        raise InvalidRequest("since: required (YYYY-MM-DD)", param="since")
    start = _instant(since, zone, "since", end=False)
    if until:
        stop = _instant(until, zone, "until", end=True)
    else:
        now = now or datetime.now(UTC)
        stop = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if stop <= start:
        raise InvalidRequest("until: the period ends before it starts", param="until")
    if stop - start > timedelta(days=MAX_DAYS):
        raise InvalidRequest(f"since: a report covers at most {MAX_DAYS} days", param="since")
    return Period(start, stop, zone)


def parse_group_by(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    parts = value.split(",") if isinstance(value, str) else [p for v in value for p in v.split(",")]
    names = tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))
    for n in names:
        if n not in GROUPS:
            raise InvalidRequest(
                f"group_by: unknown group {n[:40]!r}; one or more of {', '.join(GROUPS)}",
                param="group_by",
            )
    if sum(n in TIME_GROUPS for n in names) > 1:
        raise InvalidRequest("group_by: at most one of hour, day, week, month", param="group_by")
    return names
