"""The PSENet trainer: unsupervised training from the paper's pseudo ground truth.

Modules: ``config`` (TrainConfig), ``data`` (image folders, SICE/Afifi/LOL layouts, random
crops and synthetic exposure errors), ``references`` (stratified inverse-gamma references),
``pseudo_gt`` (candidate selection), ``losses`` (MSE + TV), ``loop`` (the training loop).
Entry point: ``psenet-stream train`` (psenet_stream/commands/train.py) -> ``train.loop.run``.
"""
