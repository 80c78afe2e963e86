"""The model file's contract, shared by who writes it (trainers) and who reads it (registry, edges).

`model.pt` is a dict loadable with `torch.load(weights_only=True)`: `format`, `state_dict`, `config`
(family, hyperparameters, input_shape, class_labels, feature_names, scaling with its `kind`) and
`metrics`. Only plain values and tensors, so loading it runs no code.
"""

from __future__ import annotations

MODEL_FORMAT = "modelyard.model/1"
PAYLOAD_KEYS = ("format", "state_dict", "config", "metrics")
CONFIG_KEYS = ("family", "hyperparameters", "input_shape", "class_labels", "feature_names", "scaling")
