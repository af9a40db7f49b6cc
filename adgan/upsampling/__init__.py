"""Ad resolution: the learned 64 -> 256 px up-sampler, its training and its comparison."""
