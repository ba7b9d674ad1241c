"""The archive's metrics: counters kept on the loop, read by Prometheus over HTTP."""
