"""The Sensor Data API from the bridge's side: the integrate call and the reading of its answer
into an Outcome, bearer tokens from IMS, the Retry-After header, and the rate gate that holds
calls back while the API asks to wait.

May import: store (the credentials secret), model, runtime.
"""
