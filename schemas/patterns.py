"""Pattern triggers: detectors that watch a user's activity over time.

Each detector is a trigger kind of its own (``when.kind == "pattern"``) with
the parameters the user chose. Windows are evaluated in event time and in the
trigger's IANA zone, so "today" is the user's local day, 23 or 25 hours long
on a daylight-saving change.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.cron import load_zone
from schemas.events import EVENT_TYPE_PATTERN

FIELD_PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
SECONDS_PER_DAY = 86_400


class _Detector(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LowMood(_Detector):
    """Fires when the last ``readings`` moods are all below ``threshold``, or
    the daily average is below ``daily_threshold`` on ``days`` consecutive
    local days. Sensitive, so it exists only when the user opts in."""

    detector: Literal["low_mood"] = "low_mood"
    #: Mood is sensitive, so the user opts in explicitly.
    consent: bool = Field(default=False, validate_default=True)
    readings: int = Field(default=3, ge=1, le=20)
    threshold: float = Field(default=-0.3, ge=-1, le=1)
    days: int = Field(default=3, ge=1, le=14)
    daily_threshold: float = Field(default=-0.3, ge=-1, le=1)

    @field_validator("consent")
    @classmethod
    def _check_consent(cls, value: bool) -> bool:
        if not value:
            raise ValueError('low mood detection is opt-in because mood is sensitive; set "consent": true')
        return value


class LongAbsence(_Detector):
    """Fires once when no activity of any kind arrived for ``absence_s``."""

    detector: Literal["long_absence"] = "long_absence"
    absence_s: int = Field(default=3 * SECONDS_PER_DAY, ge=1, le=90 * SECONDS_PER_DAY)


class HighProductivity(_Detector):
    """Fires when at least ``tasks`` tasks are completed in one local day."""

    detector: Literal["high_productivity"] = "high_productivity"
    tasks: int = Field(default=5, ge=1, le=1000)


class EnergyDip(_Detector):
    """Fires when the average energy of a window falls below the user's own
    baseline (the mean of the previous ``baseline_windows`` windows) by at
    least ``fraction``."""

    detector: Literal["energy_dip"] = "energy_dip"
    window_s: int = Field(default=6 * 3600, ge=60, le=SECONDS_PER_DAY)
    baseline_windows: int = Field(default=8, ge=1, le=60)
    min_baseline_windows: int = Field(default=3, ge=1, le=60)
    min_readings: int = Field(default=2, ge=1, le=100)
    fraction: float = Field(default=0.25, gt=0, lt=1)

    @field_validator("window_s")
    @classmethod
    def _check_window(cls, value: int) -> int:
        return _check_divides_day(value, "window_s")

    @model_validator(mode="after")
    def _check_baseline(self) -> EnergyDip:
        if self.min_baseline_windows > self.baseline_windows:
            raise ValueError("min_baseline_windows must not exceed baseline_windows")
        return self


class WindowSpec(_Detector):
    """A tumbling window (``step_s`` omitted) or a hopping one."""

    size_s: int = Field(ge=60, le=SECONDS_PER_DAY)
    step_s: int | None = Field(default=None, ge=60)

    @field_validator("size_s")
    @classmethod
    def _check_size(cls, value: int) -> int:
        return _check_divides_day(value, "size_s")

    @model_validator(mode="after")
    def _check_step(self) -> WindowSpec:
        if self.step_s is not None and (self.step_s > self.size_s or self.size_s % self.step_s):
            raise ValueError(f"step_s {self.step_s} must divide size_s {self.size_s}")
        return self

    @property
    def hop_s(self) -> int:
        return self.step_s if self.step_s is not None else self.size_s


class CustomRule(_Detector):
    """Count, sum or average of a field of one event type over a window,
    compared with a threshold, with a cooldown between firings.

    ``gt``, ``gte`` and ``eq`` are checked on every event. ``lt`` and ``lte``
    are checked when the window closes, because a window is "below" only once
    it ends.
    """

    detector: Literal["custom"] = "custom"
    event_type: str = Field(pattern=EVENT_TYPE_PATTERN)
    aggregate: Literal["count", "sum", "avg"]
    field: str | None = Field(default=None, pattern=FIELD_PATH_PATTERN)
    window: WindowSpec
    op: Literal["gt", "gte", "lt", "lte", "eq"]
    threshold: float
    cooldown_s: int = Field(default=0, ge=0, le=30 * SECONDS_PER_DAY)

    @model_validator(mode="after")
    def _check_field(self) -> CustomRule:
        if self.aggregate == "count" and self.field is not None:
            raise ValueError("a count takes no field")
        if self.aggregate != "count" and self.field is None:
            raise ValueError(f"aggregate {self.aggregate!r} needs a field to read")
        return self


Detector = Annotated[LowMood | LongAbsence | HighProductivity | EnergyDip | CustomRule, Field(discriminator="detector")]


class PatternMatch(_Detector):
    """Fires when its detector finds the pattern in the user's activity."""

    kind: Literal["pattern"] = "pattern"
    timezone: str = "UTC"
    detector: Detector

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        load_zone(value)
        return value


def _check_divides_day(value: int, name: str) -> int:
    if SECONDS_PER_DAY % value:
        raise ValueError(f"{name} {value} must divide a day (86400 s), for example 900, 3600 or 21600")
    return value
