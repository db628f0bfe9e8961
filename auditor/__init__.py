"""Trace attribution auditor: where cost-attribution metadata is lost on the way to the LLM call."""

__version__ = "0.1.0"
