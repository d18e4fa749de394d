"""Render a report's ``index.html`` to PNG screenshots with headless Chromium.

Usage::

    python -m reports.screenshot DIR [--out OUTDIR] [--width 1280] [--height 1600]

``DIR`` is a report directory (``icsmdp report`` prints it). The page is
rendered once in a window tall enough for the whole page
(``chromium --headless --no-sandbox --disable-gpu --screenshot=...
--window-size=WIDTH,TALL``), trimmed of the blank space below the content
and cut into viewport-height slices ``OUTDIR/page-01.png``,
``page-02.png``, ... (default ``OUTDIR = DIR/screenshots``), whose paths
are printed. Everything stays offline (the report embeds its figures).

Chromium is looked up as ``chromium``, ``chromium-browser``,
``google-chrome``, ``google-chrome-stable`` or ``headless_shell`` on the
``PATH`` (or the ``CHROMIUM`` environment variable). When none is
installed the script exits with status 2 and says what to install
(``apt-get install -y chromium`` on Debian/Ubuntu).

Exit status: 0 screenshots written; 2 missing Chromium or a bad ``DIR``;
1 Chromium failed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import matplotlib.image as mpimg
import numpy as np

__all__ = ["CHROMIUM_NAMES", "INSTALL_HINT", "find_chromium", "screenshot", "main"]

#: Executable names tried, in order.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                  "headless_shell")
#: What to do when no Chromium is found.
INSTALL_HINT = ("no Chromium found (tried " + ", ".join(CHROMIUM_NAMES) + " and $CHROMIUM); "
                "install it, e.g. `apt-get install -y chromium` (Debian/Ubuntu) or "
                "`brew install --cask chromium` (macOS), or set CHROMIUM=/path/to/chrome.")
#: Tallest window tried (Chromium's largest texture is 16384 px on most builds).
_MAX_HEIGHT = 16_000


def find_chromium() -> str | None:
    """Path of a Chromium executable (``$CHROMIUM`` first), or ``None``."""
    env = os.environ.get("CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _shoot(chromium: str, page: Path, png: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory(prefix="icsmdp-chromium-") as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--force-device-scale-factor=1", f"--user-data-dir={profile}",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions",
               f"--screenshot={png}", f"--window-size={width},{height}", page.as_uri()]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot (exit {out.returncode}): "
                           f"{out.stderr.strip()[-800:]}")


def _content_rows(img: np.ndarray) -> int:
    """Index one past the last row that is not plain background."""
    rgb = img[..., :3].astype(float)
    bg = rgb[-1, 0]
    busy = np.flatnonzero(np.abs(rgb - bg).max(axis=(1, 2)) > 0.02)
    return int(busy[-1]) + 1 if busy.size else 0


def screenshot(directory: str | os.PathLike, out: str | os.PathLike | None = None, *,
               width: int = 1280, height: int = 1600, chromium: str | None = None) -> list[Path]:
    """Screenshots of ``directory/index.html``, cut into ``height``-pixel slices.

    Parameters
    ----------
    directory : path-like
        A report directory.
    out : path-like, optional
        Where the slices go (default ``directory/screenshots``; created).
    width, height : int
        Window width and slice height in CSS pixels.
    chromium : str, optional
        The Chromium executable (default :func:`find_chromium`).

    Returns
    -------
    list of Path
        ``page-01.png``, ``page-02.png``, ... from the top of the page.

    Raises
    ------
    FileNotFoundError
        ``directory/index.html`` does not exist, or no Chromium is installed
        (the message is :data:`INSTALL_HINT`).
    RuntimeError
        Chromium failed.
    """
    page = Path(directory).resolve() / "index.html"
    if not page.is_file():
        raise FileNotFoundError(f"{page} does not exist: give a report directory "
                                "(the path `icsmdp report` prints).")
    exe = chromium or find_chromium()
    if exe is None:
        raise FileNotFoundError(INSTALL_HINT)
    dest = Path(out) if out is not None else page.parent / "screenshots"
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("page-*.png"):
        old.unlink()
    tall = max(4 * height, 6000)
    with tempfile.TemporaryDirectory(prefix="icsmdp-shot-") as tmp:
        full = Path(tmp) / "full.png"
        while True:
            _shoot(exe, page, full, width, tall)
            img = mpimg.imread(full)
            used = _content_rows(img)
            if used < img.shape[0] - 50 or tall >= _MAX_HEIGHT:
                break
            full.unlink()
            tall = min(2 * tall, _MAX_HEIGHT)
        used = min(img.shape[0], max(used + 40, 1))
        paths = []
        for k, top in enumerate(range(0, used, height), start=1):
            p = dest / f"page-{k:02d}.png"
            mpimg.imsave(p, img[top:min(top + height, used)])
            paths.append(p)
    if used >= _MAX_HEIGHT:
        print(f"warning: the page is taller than {_MAX_HEIGHT} px; the screenshots stop there",
              file=sys.stderr)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m reports.screenshot",
                                 description="Render a report's index.html to PNG slices with "
                                             "headless Chromium.")
    ap.add_argument("directory", help="report directory (contains index.html)")
    ap.add_argument("--out", default=None, help="output directory (default DIR/screenshots)")
    ap.add_argument("--width", type=int, default=1280, help="window width in pixels")
    ap.add_argument("--height", type=int, default=1600, help="slice height in pixels")
    args = ap.parse_args(argv)
    try:
        paths = screenshot(args.directory, args.out, width=args.width, height=args.height)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
