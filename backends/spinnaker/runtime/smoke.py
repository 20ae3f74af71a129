"""SpiNNaker / PyNN smoke check: import ``pyNN.brian2`` and ``pyNN.spiNNaker``, report versions.

Runs only in the runtime environment (Python 3.10), as
``python -m snncc.backends.spinnaker.runtime.smoke JOBDIR`` (see :mod:`snncc.runtime.bridge`).
It proves that PyNN 0.13, Brian2 2.9 and sPyNNaker 7.4.1 import together with numpy < 2.

sPyNNaker reads ``~/.spynnaker.cfg``; without a board it must say ``virtual_board = True``
(docs/hardware-semantics.md §4.3: a virtual board maps and plans but does not execute). The
bridge sets ``HOME`` to the job directory, so the config is written there first; an existing file
is left alone, so running this by hand never overwrites a user's real-board config.

Outputs: none. ``result.json``: the versions of the imported packages and whether the config
was written.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

from snncc.runtime.jobs import job_dir_from_argv, read_job, write_result

#: Virtual SpiNNaker 1 board (48 chips, "version 5"); see hardware-semantics.md §4.3.
SPYNNAKER_CFG = "[Machine]\nvirtual_board = True\nversion = 5\n"


def ensure_spynnaker_cfg(home: Path | None = None) -> bool:
    """Write the virtual-board ``.spynnaker.cfg`` into ``home`` unless present; True if written."""
    cfg = (home or Path.home()) / ".spynnaker.cfg"
    if cfg.exists():
        return False
    cfg.write_text(SPYNNAKER_CFG)
    return True


def run() -> dict[str, Any]:
    """Import both PyNN backends and return their versions."""
    wrote_cfg = ensure_spynnaker_cfg()
    import brian2
    import pyNN
    import pyNN.brian2  # noqa: F401  (the import is the check)
    import pyNN.spiNNaker  # noqa: F401

    return {
        "pyNN": pyNN.__version__,
        "brian2": brian2.__version__,
        "sPyNNaker": version("sPyNNaker"),
        "spynnaker_cfg_written": wrote_cfg,
    }


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``python -m snncc.backends.spinnaker.runtime.smoke JOBDIR``."""
    job_dir = job_dir_from_argv(argv)
    read_job(job_dir)
    write_result(job_dir, {}, run())


if __name__ == "__main__":
    main()
