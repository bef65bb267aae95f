"""Where state lives: the device registry (a port, with a DynamoDB adapter and an in-memory fake),
the boto3 clients, Secrets Manager reads, and where the configuration is read from.

May import: model, runtime.
"""
