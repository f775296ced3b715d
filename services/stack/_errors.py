"""The stack's one exception. Its message is what a developer reads on the terminal: it names the
component, says what went wrong and quotes the end of the component's log."""

from __future__ import annotations


class StackError(Exception):
    """A component could not be started, became unhealthy, or its setup is missing."""
