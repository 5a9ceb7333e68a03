"""The forms a Dask scheduler address (``--scheduler``) may take, checked before anything runs.

Shared by the CLI (a usage error, before any output is written) and
:class:`rtmask.cohort.DaskExecutor` (the library's own check). Only the form is checked here;
whether a scheduler answers there is the executor's business.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["SCHEDULER_FORMS", "SCHEDULER_SCHEMES", "scheduler_problem"]

#: The protocols of a running scheduler's address that ``distributed.Client`` speaks
#: without extra packages.
SCHEDULER_SCHEMES = ("tcp", "tls")
#: The accepted forms, as the error messages name them.
SCHEDULER_FORMS = (
    "give tcp://HOST:PORT (or tls://HOST:PORT) of a running `dask scheduler`, or local:N "
    "for N local workers"
)


def scheduler_problem(address: str) -> str:
    """What is wrong with the form of a scheduler address; "" when it is accepted.

    Accepted: ``local:N`` (N >= 1 worker processes started here) and ``tcp://HOST:PORT`` or
    ``tls://HOST:PORT`` (PORT 1 to 65535; an IPv6 HOST in brackets, ``tcp://[::1]:8786``).
    """
    if address.startswith("local:"):
        count = address.removeprefix("local:")
        if count.isascii() and count.isdigit() and int(count) >= 1:
            return ""
        return (
            f"{address!r}: local:N takes a number of workers of at least 1, e.g. local:2; or "
            "give tcp://HOST:PORT (or tls://HOST:PORT) of a running `dask scheduler`"
        )
    scheme, separator, _ = address.partition("://")
    if not separator or scheme not in SCHEDULER_SCHEMES:
        return f"{address!r} is not a Dask scheduler address; {SCHEDULER_FORMS}"
    parts = urlsplit(address)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or port == 0 or parts.path or parts.query:
        return (
            f"{address!r} needs a HOST and a PORT (1 to 65535), e.g. {scheme}://127.0.0.1:8786; "
            f"{SCHEDULER_FORMS}"
        )
    return ""
