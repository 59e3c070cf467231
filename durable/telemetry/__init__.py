"""Production telemetry: OpenTelemetry spans (tracing), Prometheus metrics (metrics) and the
ids that log records carry (logs).

Each part is optional and costs nothing when unused: tracing only acts once the
application has configured an OpenTelemetry SDK, metrics only in a worker started with
`--metrics-port` (or behind the metrics view), and the engine reaches them through a few
hook calls (durable.engine.telemetry).
"""
