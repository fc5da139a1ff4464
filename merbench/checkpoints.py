"""Read a checkpoint file safely: the one reader of ``.pt`` files for runs and fine-tuning."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from merbench.errors import MerbenchError


def load_checkpoint(path: Path, require: tuple[str, ...] = ("model",)) -> dict:
    """Load with ``weights_only=True`` (a file crafted to run code is refused); a missing,
    corrupt or foreign file, or one without the ``require``d entries, is a one-line user error.
    torch's own warnings about the file are not shown: the error line says what is wrong."""
    if not path.exists():
        raise MerbenchError(f"{path}: no such checkpoint (is the run folder complete?)")
    if path.is_dir():
        raise MerbenchError(f"{path}: is a folder, expected a checkpoint file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged or unsafe file
        raise MerbenchError(f"{path}: not a readable checkpoint ({type(e).__name__})") from None
    missing = [k for k in require if not isinstance(state, dict) or k not in state]
    if missing:
        raise MerbenchError(f"{path}: not a checkpoint this command can use (no {', '.join(missing)}; "
                            f"a best.pt holds only the model, a last.pt also the optimizer state)")
    return state
