"""Numbered SQL migrations of the metering tables, applied in order by ``schema``."""
