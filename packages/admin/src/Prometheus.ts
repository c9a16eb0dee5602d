/**
 * `/metrics`: a server's Effect metrics in the Prometheus text format,
 * read by `@effect/opentelemetry`'s metric producer and printed by the
 * OpenTelemetry Prometheus exporter's serializer: no format of our own.
 *
 * Effect has one metric registry per process, shared by every server of a
 * `herd up`; each server shows only its own series (its `server` label).
 */
import * as OtelMetrics from "@effect/opentelemetry/Metrics"
import * as OtelResource from "@effect/opentelemetry/Resource"
import { PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import { DataPointType } from "@opentelemetry/sdk-metrics"
import type { MetricData, ResourceMetrics } from "@opentelemetry/sdk-metrics"
import { Data, Effect } from "effect"

export class MetricsError extends Data.TaggedError("MetricsError")<{ readonly cause: unknown }> {
  override get message(): string {
    return `cannot collect the metrics: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

/** The content type of the Prometheus text format the serializer prints. */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

/** Keeps the data points labelled `server`, and the metrics that still have one. */
export const onlyServer = (metrics: ResourceMetrics, server: string): ResourceMetrics => ({
  resource: metrics.resource,
  scopeMetrics: metrics.scopeMetrics.map((scope) => ({
    scope: scope.scope,
    metrics: scope.metrics.flatMap((metric): Array<MetricData> => {
      const kept = keepPoints(metric, (attributes) => attributes["server"] === server)
      return kept === undefined ? [] : [kept]
    })
  }))
})

const keepPoints = (
  metric: MetricData,
  keep: (attributes: Readonly<Record<string, unknown>>) => boolean
): MetricData | undefined => {
  // Each kind of metric data is its own type: filtered one by one, so that
  // each keeps the type of its points.
  switch (metric.dataPointType) {
    case DataPointType.HISTOGRAM: {
      const dataPoints = metric.dataPoints.filter((point) => keep(point.attributes))
      return dataPoints.length === 0 ? undefined : { ...metric, dataPoints }
    }
    case DataPointType.EXPONENTIAL_HISTOGRAM: {
      const dataPoints = metric.dataPoints.filter((point) => keep(point.attributes))
      return dataPoints.length === 0 ? undefined : { ...metric, dataPoints }
    }
    case DataPointType.GAUGE: {
      const dataPoints = metric.dataPoints.filter((point) => keep(point.attributes))
      return dataPoints.length === 0 ? undefined : { ...metric, dataPoints }
    }
    case DataPointType.SUM: {
      const dataPoints = metric.dataPoints.filter((point) => keep(point.attributes))
      return dataPoints.length === 0 ? undefined : { ...metric, dataPoints }
    }
  }
}

/**
 * Makes the Prometheus text of `server`'s series, as they stand in Effect's
 * registry when it runs (publish the server's stats first).
 */
export const makeScrape = (server: string): Effect.Effect<Effect.Effect<string, MetricsError>> =>
  Effect.gen(function*() {
    const producer = yield* OtelMetrics.makeProducer.pipe(
      Effect.provide(OtelResource.layer({ serviceName: "herd", attributes: { server } }))
    )
    // No target_info and no otel_scope_name label: the series are the
    // server's own, and their `server` label says whose.
    const serializer = new PrometheusSerializer(undefined, false, undefined, true, true)
    return Effect.tryPromise({
      try: () => producer.collect(),
      catch: (cause) => new MetricsError({ cause })
    }).pipe(Effect.map(({ resourceMetrics }) => serializer.serialize(onlyServer(resourceMetrics, server))))
  })
