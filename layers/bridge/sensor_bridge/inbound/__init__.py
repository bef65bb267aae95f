"""The webhook function's side: receiving one webhook (find the source, authenticate, answer
handshakes, parse with the platform's adapter, deliver once per event) and shaping its answer.

May import every room below it: retry, delivery, platforms, sensor_data, store, model, runtime.
"""
