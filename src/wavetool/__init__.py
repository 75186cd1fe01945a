"""wavetool: import, harmonise, tabulate, report and deliver a multi-wave public-sector survey."""

__version__ = "0.1.0"
