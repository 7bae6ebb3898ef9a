"""Training a model from a config and everything a trained model is served with: build, fit, the final
evaluation, callbacks, checkpoints, the run folder, validation, launch, export and timing."""
