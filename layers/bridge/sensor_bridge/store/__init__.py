"""Where state lives: the device registry (a port, with a DynamoDB adapter and an in-memory fake),
the boto3 clients, Secrets Manager reads, where the configuration is read from, and its check
(`config_check`: the configuration file and the webhook secrets file, before anything starts).

May import: model, runtime.
"""
