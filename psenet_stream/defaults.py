"""The temporal defaults every video run gets (the CLI, the demo, the bench's file rows).

No imports: the command line reads these to write its help without loading torch.
"""

# Chosen on the video evaluation (docs/EVALUATION.md, "Video":
# 5 real clips with constant, hunting and stepped exposure errors). With the pairs weights the
# stabilizer alone (0.9) cut a hunting camera's flicker from 3.56 to 1.06 levels (the input's:
# 5.35) and followed a light switched off within 0.4 frames, while the per-pixel EMA
# (smoothing 0.5) lagged the step by 6.8 frames and left the hunt at 3.34: the EMA is off.
# Reusing gamma for up to 4 frames while the working-size frame moves less than 0.005 skipped
# 26 % of the network runs there with the same PSNR and flicker (within 0.001 levels).
VIDEO_SMOOTHING = 0.0
VIDEO_STABILIZE = 0.9
VIDEO_GAMMA_EVERY = 4
# The adaptive triggers of gamma reuse (temporal.GammaReuse, issue 13): a frame whose mean luma moved by more
# than REUSE_BRIGHTNESS (in [0, 1]) from the frame of the last prediction, or whose mean absolute difference
# from it, less that brightness change, exceeds REUSE_MOTION, runs the network at once (a scene cut always does).
REUSE_BRIGHTNESS = 0.01
REUSE_MOTION = 0.02

