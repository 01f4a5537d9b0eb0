"""The packed convolution chosen per layer shape (lowrank.models.packed_conv.LayerShape -> candidate name), written
by `python -m bench.bench_conv --write`; empty: every shape runs the grouped convolution.

Not yet measured on a GPU.
"""

CHOICES: dict[tuple, str] = {}
