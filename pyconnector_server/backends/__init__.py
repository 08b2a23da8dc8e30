"""Pluggable backends: one narrow interface per concern, one file per implementation."""
