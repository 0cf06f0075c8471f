"""What runs underneath streams: the log, transports, the worker."""
