"""brainlib: an executable replication of Huang, Alkadri & Prakash (2025).

*Employing Squeeze-and-Excitation Architecture in a Fine-Tuned CNN for MRI
Tumor Classification*, Cureus 17(3): e80084.

Layers (a module imports only from the layers above it):
``config`` / ``address`` / ``fileio`` / ``paper`` / ``display`` -> ``data`` -> ``models`` ->
``runs`` (the run folder and its provenance) -> ``protocol`` (the paper's protocol in Keras) /
``checkpoints`` (resumable) / ``trunk_cache`` (the fast path) -> ``training`` ->
``evaluation`` / ``statistics`` / ``pooled`` / ``leakage`` / ``gradcam`` / ``external`` ->
``fit_and_saliency`` (made beside the weights) / ``results`` (export, load and checks of
committed results) -> ``answers`` (the questions the results page answers) -> ``plots`` ->
``workflow`` (papermill and Jupyter Book) / ``cli``.
"""

__version__ = "0.3.0.dev0"
