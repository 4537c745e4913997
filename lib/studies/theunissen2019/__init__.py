"""Theunissen, Davel & Barnard (FAIR 2019): :mod:`.probes`, the per-layer probes of Figures 3-7; :mod:`.noise`, the
chapter's analysis of its networks (the grid, Figures 1-7); :mod:`.protocol`, Appendix A's runs and the schema."""
