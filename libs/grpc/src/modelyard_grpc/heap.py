"""The heap a service builds at start, kept out of the cyclic garbage collector's full passes.

A service imports its modules and builds its schemas, engines and servers once; those objects live
as long as the process. CPython 3.11 still walks them in every full (oldest-generation) collection,
and a replay or catch-up that reads a million events allocates enough to trigger one every few
thousand events: measured in bench-audit, full passes over the start-up heap were a sixth of a
replay's time. `gc.freeze()` moves them to the permanent generation (Python's documented tool for
this; Instagram runs its servers with it), so those passes walk only what the service made since.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect what start-up left as garbage, then freeze the rest; returns how many objects froze.

    Call once the service is serving: what it allocates afterwards is collected as usual.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
