"""Materials Project live API (optional): structures queried with the ``mp-api`` client and ``$MP_API_KEY``.

Needs the optional package (``pip install 'pxrdbench[mp]'``), an API key (``api_key=`` or ``$MP_API_KEY``) and
a network. Each missing piece raises a DatasetError that says so. The endpoint is probed with a plain TCP
connection bounded by ``timeout`` before the client is built, because ``MPRester()`` makes HTTP calls without
a timeout at construction and would hang on a black-holed network. Live data change over time, so caches built
from this source are not reproducible; the benchmark's sets are the offline sources.
"""

from __future__ import annotations

import importlib.util
import math
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from pxrdbench.data.records import SourceFailure, StructureRecord
from pxrdbench.data.sources.base import SourceInfo, SourceItem, check_max_structures
from pxrdbench.errors import DatasetError

SOURCE = "mp_api"
KEY_ENV = "MP_API_KEY"
DEFAULT_ENDPOINT = "https://api.materialsproject.org/"
DEFAULT_QUERY: dict[str, Any] = {"num_sites": (1, 40), "deprecated": False}
FIELDS = ["material_id", "structure", "formation_energy_per_atom", "energy_above_hull"]


def endpoint_reachable(endpoint: str, timeout: float) -> str | None:
    """None when a TCP connection to the endpoint's host opens within ``timeout`` seconds, else the reason."""
    url = urlparse(endpoint)
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(f"{type(exc).__name__}: {exc}")

    worker = threading.Thread(target=connect, daemon=True)  # DNS lookups ignore socket timeouts
    worker.start()
    worker.join(timeout + 0.5)
    return outcome[0] if outcome else f"no answer from {host}:{port} within {timeout} s"


def require_client(api_key: str | None, endpoint: str, timeout: float) -> str:
    """Check package, key and network; return the key. Raises DatasetError naming what is missing."""
    if importlib.util.find_spec("mp_api") is None:
        raise DatasetError("dataset 'mp_api' needs the mp-api package: pip install 'pxrdbench[mp]'")
    key = api_key or os.environ.get(KEY_ENV, "")
    if not key.strip():
        raise DatasetError(
            f"dataset 'mp_api' needs a Materials Project API key: set ${KEY_ENV} or pass api_key= "
            "(keys at https://next-gen.materialsproject.org/api)"
        )
    if (reason := endpoint_reachable(endpoint, timeout)) is not None:
        raise DatasetError(
            f"dataset 'mp_api': cannot reach {endpoint} ({reason}); offline? Use an offline source."
        )
    return key.strip()


def iter_mp_api(
    *,
    max_structures: int | None = None,
    root: str | None = None,
    api_key: str | None = None,
    query: dict[str, Any] | None = None,
    endpoint: str = DEFAULT_ENDPOINT,
    timeout: float = 5.0,
) -> Iterator[SourceItem]:
    """Yield Materials Project structures matching ``query`` (summary-search arguments); id = the MP id.

    ``root``, when given, is a chemical system (``"mp_api:Li-Fe-O"``) added to the query as ``chemsys``.
    """
    limit = check_max_structures(max_structures)
    key = require_client(api_key, endpoint, timeout)
    search = dict(DEFAULT_QUERY if query is None else query)
    if root:
        search["chemsys"] = str(root)
    if limit is not None:
        if limit == 0:
            return
        search["chunk_size"] = min(1000, limit)
        search["num_chunks"] = math.ceil(limit / search["chunk_size"])
    try:
        from mp_api.client import MPRester

        with MPRester(api_key=key, endpoint=endpoint, mute_progress_bars=True) as rester:
            docs = rester.materials.summary.search(fields=FIELDS, **search)
    except Exception as exc:  # bad key, server error, network drop: one message for the user
        raise DatasetError(f"dataset 'mp_api': query {search} failed ({type(exc).__name__}: {exc})") from exc
    for doc in docs[:limit]:
        record_id = str(getattr(doc, "material_id", "") or "")
        structure = getattr(doc, "structure", None)
        if structure is None:
            yield SourceFailure(record_id or "mp_api:unknown", SOURCE, "document has no structure")
            continue
        meta = {f: getattr(doc, f, None) for f in ("formation_energy_per_atom", "energy_above_hull")}
        yield StructureRecord(record_id, structure, SOURCE, "", meta)


def fingerprint_mp_api(root: str | None = None) -> str:
    """Live data have no content hash: the fingerprint names the query only (caches are not reproducible)."""
    return f"mp_api:live:{root or 'default'}:{sorted(DEFAULT_QUERY.items())}"


INFO = SourceInfo(
    name=SOURCE,
    iterate=iter_mp_api,
    fingerprint=fingerprint_mp_api,
    description="Materials Project live API (mp-api client, needs $MP_API_KEY and a network)",
    expected_count=None,
    licence="Materials Project CC BY 4.0",
    provenance="https://api.materialsproject.org/ (live)",
    notes="optional: pip install 'pxrdbench[mp]'; results change over time",
)
