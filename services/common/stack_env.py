"""``stack.env``: the ``SWITCHYARD_*`` variables a local stack's services run with, which
``switchyard up`` writes to ``$SWITCHYARD_HOME/stack.env`` (``services.stack``, from
``StackLayout.service_env``) and client commands read to find that stack.

The reading lives here rather than beside the writing in ``services.stack``: that package loads
httpx, redis and aiokafka when imported, and the ``switchyard`` command reads this file on its
light path (``switchyard usage``).
"""

from __future__ import annotations


def parse_stack_env(text: str) -> dict[str, str]:
    """The ``SWITCHYARD_*`` variables in ``stack.env``'s text, one ``NAME=value`` a line.

    The value is everything after the first ``=``, verbatim: the file is not a shell script and
    nothing in it is quoted. Other lines are ignored; a name given twice keeps its last value.
    """
    found = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.startswith("SWITCHYARD_"):
            found[name] = value
    return found
