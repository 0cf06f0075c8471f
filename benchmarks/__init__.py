"""Throughput and latency harnesses."""
