"""Metering: usage events from ``sy.usage.v1``, priced from the catalogue, stored once each in
ClickHouse, and served back as analytics (``switchyard usage``, ``/v1/usage/*``).

Modules: ``pricing`` (cost of one event), ``rows`` and ``migrations/`` (the table), ``schema``
(applying migrations), ``store`` (ClickHouse), ``recorder`` (dedupe and write a batch),
``consumer`` (Kafka), ``api`` (HTTP), ``service`` (the process), ``report`` (the CLI command).
"""
