"""sensor_bridge: onboards IoT devices announced by platform webhooks into iTwin Sensor Data."""
