"""Where the folders gitward ships beside its code are: `migrations/` and `rules/`.

They live at the top of the source tree, beside `engine/`; a wheel carries them inside the
package as `engine/_shipped/<name>` (pyproject.toml's `package-dir`), because a top-level
`migrations` or `rules` package would collide in site-packages.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
WHEEL_FOLDER = "_shipped"


def shipped_dir(name: str) -> Path:
    """The shipped folder `name`: inside an installed wheel, else in the source checkout.

    When neither exists, the wheel's location, so the caller's "missing" message names a path.
    """
    installed = _PACKAGE / WHEEL_FOLDER / name
    source = _PACKAGE.parent / name
    if not installed.is_dir() and source.is_dir():
        return source
    return installed
