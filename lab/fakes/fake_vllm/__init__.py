"""FAKE vLLM for qwen-vl-deploy's tests and lab (no GPU here). The version is stamped at build time."""
__version__ = "0.11.0"
