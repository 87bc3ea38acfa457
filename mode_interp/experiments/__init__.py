"""Experiments: each heavy computation the book shows, as a plain function of a frozen spec returning a
cached result record (:mod:`.records`), so that notebooks, the shell and :mod:`mode_interp.sweep` all
run the same code.

Registered experiments: ``recursive_arm`` (:mod:`.loops`: one arm of one replicate of chapter 5's
self-consuming loop), ``toy_model`` (:mod:`.models`: a toy model trained with snapshots and measured at
each), ``sampler_grid`` (:mod:`.samplers`: a toy model or the exact score under DDPM / DDIM on several step
counts), ``boundary_lipschitz`` (:mod:`.lipschitz`: a 1-D model's denoiser slope between its modes),
``shapes_model`` (:mod:`.shapes`: the SIMPLE SHAPES U-Net trained with snapshots and counted at each) and
``selftest`` (:mod:`.selftest`: checks of the sweep machinery).
"""

from . import lipschitz, loops, models, samplers, selftest, shapes  # noqa: F401  (registers the experiments)
from .records import (EXPERIMENTS, SHIPPED_RESULTS, Experiment, as_spec, compute, find, get,  # noqa: F401
                      load_index, load_records, read_record, record_file, register, run, write)
