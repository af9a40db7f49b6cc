"""The ad layer: finished creatives, shoppers' personalised ads, CTR analysis and the studio.

It draws product images through the core (a training run or an exported
SavedModel, `ads.sources`) and never the other way round: no core module imports
`ads`.

- `ads.creative`     a product image + headline, price and button at standard ad sizes
- `ads.fonts`        the CJK-capable font copy is set in
- `ads.sources`      where product images come from: an exported SavedModel or a run
- `ads.personalize`  a shopper's events -> ranked prompts -> their creatives
- `ads.ctr`          CTR with confidence, A/B tests, Thompson-sampling allocation
- `ads.charts`       the CTR report's picture (Pillow only)
- `ads.studio`       the local studio page for marketers (with `ads.studio_page`)
"""

import adgan  # noqa: F401, E402  (first: TensorFlow starts quietly, adgan/quiet.py)
