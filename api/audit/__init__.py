"""Auditors' tools: the log as published, tamper evidence, point-in-time views, replay checks."""
