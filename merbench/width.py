"""How wide merbench prints a rich table, and column widths that never cut a word.

One policy for every rich table (``table``, the grids, ``models``, ``datasets``): the width is
``COLUMNS`` when set, else the terminal's when the output is one, else (a pipe, a file) wide
enough that nothing wraps, so each row is one line that ``grep`` finds whole. Inside that
width a column may wrap between words but never cuts one: a name the user must type (a model,
a class, an ablation component) is printed whole, and where the words cannot fit the table
grows wider than the width rather than losing letters.
"""

from __future__ import annotations

import os
import shutil
import sys

from rich.cells import cell_len


def output_width(stream=None) -> int | None:
    """``COLUMNS``, else the terminal's width when ``stream`` (default stdout) is a terminal,
    else None: as wide as the content needs."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    stream = stream or sys.stdout
    try:
        if stream.isatty():
            return shutil.get_terminal_size().columns
    except (AttributeError, ValueError, OSError):
        pass
    return None


def _longest_word(text: str) -> int:
    return max((cell_len(word) for line in text.splitlines() for word in line.split()), default=0)


def _longest_line(text: str) -> int:
    return max((cell_len(line) for line in text.splitlines()), default=0)


def fit_columns(table, cells: list[list[str]], width: int | None) -> int:
    """Set the column widths of the rich ``table`` (whose rows hold ``cells``, headers in its
    columns) so that it fits ``width`` without cutting a word: the columns with the most room
    above their longest word give way first. Returns the width to print the table at (at
    least ``width``; the table's natural width when ``width`` is None)."""
    columns = table.columns
    texts = [[str(c.header)] + [row[j] for row in cells if j < len(row)] for j, c in enumerate(columns)]
    longest = [max(_longest_line(t) for t in col) for col in texts]
    shortest = [max(_longest_word(t) for t in col) if not c.no_wrap else longest[j]
                for j, (c, col) in enumerate(zip(columns, texts))]
    shortest = [max(s, 1) for s in shortest]
    # Each cell's left and right padding, and the box's vertical rules.
    _, right, _, left = table.padding
    overhead = (left + right) * len(columns) + (len(columns) + 1 if table.box else 0)
    natural = sum(longest) + overhead
    if width is None or natural <= width:
        return max(natural, width or 0)
    widths = list(longest)
    room = width - overhead
    while sum(widths) > room:
        j = max(range(len(widths)), key=lambda k: (widths[k] - shortest[k], widths[k]))
        if widths[j] <= shortest[j]:
            break  # every column is at its longest word: wider than the width, never cut
        widths[j] -= 1
    for column, w in zip(columns, widths):
        column.width = w
    return max(width, sum(widths) + overhead)
