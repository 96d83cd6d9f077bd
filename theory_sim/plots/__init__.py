"""Figures: phase diagrams with the theorem's boundaries (``phase``), curves and the curve kinds a sweep asks for
(``curves``), what they share (``common``) and the entry point (``draw.plot_sweep``). Every figure is written as
PNG and PDF beside the CSV of exactly what was drawn; what to draw comes from the sweep file's ``[plot]`` table
(x, y, metric, curve = [...]) or from ``theory-sim plot`` options. Imported on first use (matplotlib is heavy)."""

from ..lazy import exports

_NAMES = {
    "plot_sweep": ".draw",
    "phase_diagram": ".phase",
    "curve": ".curves",
    "frr_by_step": ".curves",
    "CURVES": ".curves",
    "write_csv": ".common",
}
__getattr__ = exports(__name__, _NAMES)
__all__ = list(_NAMES)
