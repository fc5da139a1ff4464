"""Where a run computes and on how many CPU threads: the one device rule and the one thread
default that training, evaluation, extraction, fine-tuning and the grids share."""

from __future__ import annotations

from merbench.errors import MerbenchError

# Torch CPU threads of a run and of each grid cell: fixed, so that every runner gives the same
# numbers (a run's recipe records it as ``train.threads``); 1 measured fastest on small models,
# see docs/benchmarks.md#threads.
DEFAULT_THREADS = 1


def resolve_device(name: str | None, where: str = "--device"):
    """``None`` / ``""`` / ``"auto"``: CUDA when available, else CPU; ``cpu``, ``cuda`` and
    ``cuda:N`` as named. Anything else, or CUDA asked for where torch has none, is an error
    naming ``where`` (the option or recipe key the name came from)."""
    import torch  # here, not at the top: the recipe reads DEFAULT_THREADS at start-up

    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not str(name).startswith("cuda:"):
        raise MerbenchError(f"{where} {name}: expected cpu, cuda, cuda:N or auto")
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise MerbenchError(f"{where} {name}: CUDA is not available to torch {torch.__version__}; use cpu or auto")
    return torch.device(name)

