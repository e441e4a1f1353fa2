"""Agents and servers that carry decisions out: chat store, history, push, live."""
