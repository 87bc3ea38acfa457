"""mode_interp: re-deriving "Understanding Hallucinations in Diffusion Models through Mode
Interpolation" (Aithal, Maini, Lipton, Kolter; NeurIPS 2024).

Modules, one concept each: ``schedule`` (beta, alpha_bar), ``diffusion`` (q_sample, eps-MSE loss,
reverse step, sampler), ``data`` (Gaussian mixtures), ``optimal`` (closed-form denoiser and score),
``hallucination`` (labels and true rates), ``models`` / ``train`` (the toy MLP and its trainer),
``interpolation`` / ``smoothing`` (chapter 2's measurements), ``shapes`` / ``shape_counter`` / ``unet`` /
``image_train`` (SIMPLE SHAPES), ``detect`` (the trajectory-variance detector Hal, thresholds, ROC),
``precision`` (bfloat16 products and torch.compile, with fallbacks) / ``engine_check`` (bfloat16 vs float32
validation), ``stats`` (intervals and tests, within a run and across seeds), ``experiments`` / ``sweep`` (records of
replicated experiments, run on Dask), ``cache``, ``plots``, ``widgets``, ``runtime`` (FAST mode, threads);
what the chapters show, as tested functions: ``toy_report`` (chapter 2), ``shapes_report`` (3),
``detector_study`` (4), ``loop_report`` (5), ``report`` (tables, glue, the check cell).
"""

__version__ = "0.1.0"

from .data import GaussianMixture, grid_9, grid_25, mixture_1d, rotated_grid_25  # noqa: F401
from . import precision, stats  # noqa: F401
from .diffusion import (SampleResult, Step, eps_mse_loss, posterior_step_mean, q_sample,  # noqa: F401
                        reverse_step, sample, sample_progressive, x0_from_eps)
from .hallucination import (chi_tail, is_hallucinated, nearest_mode_distance,  # noqa: F401
                            true_hallucination_rate)
from .stats import two_proportion_z, wilson_interval  # noqa: F401
from .optimal import (exact_chain_mode_std, exact_eps_fn, measured_transition_width,  # noqa: F401
                      optimal_eps, posterior_mean, posterior_mean_check, responsibilities, score,
                      step_profile, transition_width)
from .runtime import configure_threads, fast_mode  # noqa: F401
from .schedule import Schedule, linear_schedule, respace  # noqa: F401
