"""Sources and sinks. Only this package imports av (PyAV)."""
