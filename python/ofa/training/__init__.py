"""The torch side: the One-for-All module and its rsLoRA config (`model`), offline backbones (`backbone`),
the training loop and presets (`loop`), checkpoints and resume state (`checkpoint`, `resume`), data
parallelism (`distributed`), the ridge linear path and lookback choice (`linear_path`) and students
(`distill`)."""
