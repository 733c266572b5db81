"""The zevents benchmark suite: ``python -m benchmarks [--quick] [--json FILE]``.

Each module measures one thing against its baseline; ``harness`` holds what they share.
"""
