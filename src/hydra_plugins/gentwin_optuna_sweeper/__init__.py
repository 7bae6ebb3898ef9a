"""gentwin's Optuna sweeper for Hydra (``hydra/sweeper=gentwin_optuna``); see ``optuna_sweeper``."""
