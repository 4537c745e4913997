"""Each paper's own analysis, one package per paper (the engine that trains the networks is ``lib`` itself).

- :mod:`lib.studies.zhang2017` — Zhang, Bengio, Hardt, Recht & Vinyals, *Understanding deep learning requires
  rethinking generalization* (ICLR 2017; CACM 2021)
- :mod:`lib.studies.theunissen2019` — Theunissen, Davel & Barnard, *Insights regarding overfitting on noise in deep
  learning* (FAIR 2019)
- :mod:`lib.studies.masc` — *Decoding generalization from memorization in deep neural networks* (the MASC paper)
- :mod:`lib.studies.weng2019` — Weng, *Are deep neural networks dramatically overfitted?* (2019), and the three works
  its experiments come from (Belkin et al. 2019, Li et al. 2018, Zhang, Bengio & Singer 2019)
- :mod:`lib.studies.synthesis` — the cross-paper re-analysis of the runs above
"""
