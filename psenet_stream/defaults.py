"""The temporal defaults every video run gets (the CLI, the demo, the bench's file rows).

No imports: the command line reads these to write its help without loading torch.
"""

# Chosen on the video evaluation (docs/EVALUATION.md, "Video":
# 5 real clips with constant, hunting and stepped exposure errors). With the pairs weights the
# stabilizer alone (0.9) cut a hunting camera's flicker from 3.56 to 1.06 levels (the input's:
# 5.35) and followed a light switched off within 0.4 frames, while the per-pixel EMA
# (smoothing 0.5) lagged the step by 6.8 frames and left the hunt at 3.34: the EMA is off.
# Adaptive gamma reuse (temporal.GammaReuse, issue 13; docs/EVALUATION.md "Running the network less
# often"): the network runs at least every 8th frame, and at once on a cut, on a change of the mean luma
# over REUSE_BRIGHTNESS (in [0, 1]) since its last run, or on motion (the mean absolute difference less
# that brightness change) over REUSE_MOTION. A reused gamma is shifted (REUSE_HOLD 1: fully) so the frame
# keeps the output level the gamma gave its key frame. On the 5 clips x 4 exposure variants it ran on
# 30 % of the frames, with PSNR -0.03..+0.05 dB and flicker 0.000..-0.010 levels against running it on
# every frame (without the hold, brightness 0.005: 36 % of the frames and flicker +0.003..+0.015).
VIDEO_SMOOTHING = 0.0
VIDEO_STABILIZE = 0.9
VIDEO_GAMMA_EVERY = 8
REUSE_BRIGHTNESS = 0.015
REUSE_MOTION = 0.02
REUSE_HOLD = 1.0

