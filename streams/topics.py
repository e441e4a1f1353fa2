"""Names of every topic, in one place.

All topics are keyed by ``user_id`` and have the same partition count.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicNames:
    prefix: str

    @property
    def activity(self) -> str:
        return f"{self.prefix}activity"

    @property
    def ticks(self) -> str:
        return f"{self.prefix}ticks"

    @property
    def webhooks(self) -> str:
        return f"{self.prefix}webhooks"

    @property
    def external(self) -> str:
        return f"{self.prefix}external"

    @property
    def commands(self) -> str:
        return f"{self.prefix}commands"

    @property
    def occurrences(self) -> str:
        return f"{self.prefix}occurrences"

    @property
    def deliveries(self) -> str:
        return f"{self.prefix}deliveries"

    @property
    def live(self) -> str:
        return f"{self.prefix}live"

    @property
    def outcomes(self) -> str:
        return f"{self.prefix}outcomes"

    @property
    def pushes(self) -> str:
        """Deliveries stored in the chat that also go out as Web Push."""
        return f"{self.prefix}pushes"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}dead-letters"

    def all(self) -> list[str]:
        return [
            self.activity,
            self.ticks,
            self.webhooks,
            self.external,
            self.commands,
            self.occurrences,
            self.deliveries,
            self.live,
            self.outcomes,
            self.pushes,
            self.dead_letters,
        ]
