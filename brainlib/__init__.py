"""brainlib: an executable replication of Huang, Alkadri & Prakash (2025).

*Employing Squeeze-and-Excitation Architecture in a Fine-Tuned CNN for MRI
Tumor Classification*, Cureus 17(3): e80084.

Layers (a module imports only from the layers above it):
``config`` / ``fileio`` / ``paper`` / ``display`` -> ``data`` -> ``models`` -> ``runs``
(the run folder) -> ``training`` -> ``evaluation`` / ``statistics`` / ``pooled`` /
``leakage`` / ``gradcam`` / ``external`` -> ``analysis`` / ``results`` (export, load and
checks of committed results) -> ``answers`` (the questions the results page answers) ->
``plots`` -> ``pipeline`` / ``cli``.
"""

__version__ = "0.2.0"
