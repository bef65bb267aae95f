"""The Sensor Data API from the bridge's side: the integrate call and the reading of its answer
into an Outcome, bearer tokens from IMS, the Retry-After header, and the rate limiter that every
call of both functions (and reading uploads) goes through.

May import: store (the credentials secret), model, runtime.
"""
