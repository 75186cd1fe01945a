"""The report design before issue 14 (wavetool main at the start of that work), kept verbatim as the
baseline of benchmarks/bench_report.py: its model, charts, renderer and templates. Not shipped."""
