"""Training a model from a config and everything a trained model is served with: build, fit, the final
evaluation, callbacks, checkpoints, the run folder, validation, launch, export and timing."""

# The configs' resolvers (``${gentwin_div:...}``, folder names, launcher presets) exist wherever a
# training module is used, not only after the ``run`` command imported them: a preset composed by a
# library caller (or a test) resolves as in a run.
from gentwin.training import resolvers  # noqa: E402, F401
