"""What happens to work that did not finish: `route` decides retry or park for every outcome,
`plan` how long to wait, `queue` puts it on the retry or dead-letter queue (SQS), `worker` is the
retry function's batch, `redrive` the operator's way back from the dead-letter queue.

May import: delivery, sensor_data, store, model, runtime.
"""
