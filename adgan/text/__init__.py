"""Text: the tokenizer and text encoder the GAN reads prompts with, and the dual encoder
(DAMSM-style) that pretrains it and that the in-domain evaluator uses."""
