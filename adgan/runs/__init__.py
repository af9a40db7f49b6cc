"""Training runs and releases: the run folder, what is read back from it, and the one
object that opens a run or release for drawing (`adgan.runs.run.Run`).

    RUN/
      config.json            the resolved `TrainConfig` (rebuilds the run)
      data_report.json       rows read, used and skipped, each bad row with file and reason
      vocabulary.txt         the tokenizer's vocabulary, one token a line
      checkpoints/           the resumable training state (training/checkpoints.py)
      logs/, samples/        TensorBoard logs and sample grids (training/callbacks.py)
      final/model.keras      the trained model (tokenizer + text encoder + EMA G + D)
      final/vocabulary.txt
      final/calibration.json the discriminator gate's calibration (drawing/calibrate.py)
      text_encoder/          with `--text-encoder auto`: the run's own dual encoder
      style_words.json       {style: [English, Chinese]} the run was taught
      upsampler.keras        the learned 4x up-sampler (adgan-train-upsampler), if trained

The model the repository ships, models/adgan/ (`layout.SHIPPED_RUN`), is such a folder
cut down to what drawing needs (`release.write_release`).

    layout.py     the folder's files, its settings (config.json), the shipped release
    rows.py       a run's manifest rows (its groups and styles), names and style words
    artifacts.py  loading what training wrote: model, vocabulary, encoders, up-sampler, splitter
    release.py    the slim release copy, and the record an export keeps of its run
    run.py        `Run`: a run or release opened once, its parts loaded at first use
"""
