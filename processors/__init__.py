"""Agents that turn facts into decisions: matching, rendering and policy."""
