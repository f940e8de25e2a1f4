"""brainlib: an executable replication of Huang, Alkadri & Prakash (2025).

*Employing Squeeze-and-Excitation Architecture in a Fine-Tuned CNN for MRI
Tumor Classification*, Cureus 17(3): e80084.

Layers (a module imports only from the layers above it):
``config`` / ``fileio`` / ``paper`` -> ``data`` -> ``models`` -> ``runs`` (the run
folder) -> ``training`` -> ``evaluation`` / ``statistics`` / ``gradcam`` ->
``replication`` -> ``plots`` -> ``findings`` (the results page's sentences) ->
``pipeline`` / ``cli``.
"""

__version__ = "0.2.0"
