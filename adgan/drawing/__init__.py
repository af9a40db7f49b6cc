"""Drawing: the sampler with the discriminator gate, its calibration command, and the
composition of bundles."""
