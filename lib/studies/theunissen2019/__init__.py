"""Theunissen, Davel & Barnard (FAIR 2019): :mod:`.probes`, the per-layer probes of Figures 3-7."""
