"""Reliability tests: many processes against one PostgreSQL database, faults, replay."""
