"""Weng (2019), *Are deep neural networks dramatically overfitted?*, and the works its three experiments follow.

- :mod:`.double_descent` — Belkin, Hsu, Ma & Mandal (2019): the sweep across the interpolation threshold;
  :mod:`.risk_curves`: the chapter's curves, joined, averaged, and where they peak
- :mod:`.intrinsic_dimension` — Li, Farkhoor, Liu & Yosinski (2018): training in a random subspace;
  :mod:`.subspace_runs`: the chapter's run configurations; :mod:`.subspace_fits`: d_int90 and the other crossings
- :mod:`.layer_robustness` — Zhang, Bengio & Singer (2019): re-initializing and re-randomizing one layer
"""
