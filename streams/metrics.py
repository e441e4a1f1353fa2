"""Prometheus counters of the worker and the gateway."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_CONSUMED = Counter(
    "luna_events_consumed_total", "Activity events read, by whether any trigger matched.", ["matched"]
)
DEAD_LETTERS = Counter(
    "luna_dead_letters_total", "Records sent to the dead-letter topic, by stage and error code.", ["stage", "code"]
)
OCCURRENCES = Counter("luna_occurrences_total", "Occurrences produced, by source.", ["source"])
RENDER_ERRORS = Counter("luna_render_errors_total", "Templates that failed to render.")
DELIVERIES = Counter("luna_deliveries_total", "Delivery results, by channel and status.", ["channel", "status"])
SCHEDULE_FIRES = Counter("luna_schedule_fires_total", "Schedule ticks published.")
SCHEDULE_MISSED = Counter("luna_schedule_missed_runs_total", "Schedule runs missed after downtime.")
SINK_RETRIES = Counter("luna_sink_retries_total", "Retried writes after a transient failure.", ["sink"])
CHAT_WRITE_SECONDS = Histogram("luna_chat_write_seconds", "Time to store one proactive chat message.")
PATTERN_DETECTIONS = Counter("luna_pattern_detections_total", "Patterns detected, by detector.", ["detector"])
PATTERN_LATE_EVENTS = Counter(
    "luna_pattern_late_events_total", "Events older than the allowed lateness, left out of pattern windows."
)
WEBHOOK_REQUESTS = Counter(
    "luna_webhook_requests_total", "Webhook calls answered by the gateway, by hook and error code.", ["hook", "code"]
)
WEBHOOK_DUPLICATES = Counter("luna_webhook_duplicates_total", "Webhook deliveries skipped as already handled.")
