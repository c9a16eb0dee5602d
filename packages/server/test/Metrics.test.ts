/**
 * ServerStats and its Publisher: plain numbers moved into Effect metrics,
 * counters by their growth, histograms exact in count, sum and buckets.
 */
import { describe, expect, it } from "@effect/vitest"
import { Metrics } from "@herd/server"
import { Metric, MetricKey, MetricLabel } from "effect"

const histogramState = (key: MetricKey.MetricKey.Histogram, server: string) =>
  Metric.globalMetricRegistry.getHistogram(MetricKey.taggedWithLabels(key, [MetricLabel.make("server", server)])).get()

describe("Metrics", () => {
  it("a histogram is published exact: count, sum and the bucket of every observation", () => {
    const stats = new Metrics.ServerStats("Histo", 0)
    const publisher = new Metrics.Publisher(stats)
    stats.replyLatency.observe(0.00002)
    stats.replyLatency.observe(0.00003)
    stats.replyLatency.observe(0.3)
    stats.replyLatency.observeMany(4, 0.0004 * 4)
    publisher.unsafePublish({ records: 0 }, 0)
    const first = histogramState(Metrics.metrics.replyLatency, "Histo")
    expect(first.count).toBe(7)
    expect(first.sum).toBeCloseTo(0.00002 + 0.00003 + 0.3 + 0.0016, 12)
    const cumulative = Object.fromEntries(first.buckets.map(([bound, count]) => [String(bound), count]))
    expect(cumulative["0.00001"]).toBe(0)
    expect(cumulative["0.000025"]).toBe(1)
    expect(cumulative["0.00005"]).toBe(2)
    expect(cumulative["0.0005"]).toBe(6)
    expect(cumulative["0.25"]).toBe(6)
    expect(cumulative["0.5"]).toBe(7)
    // A second publish adds only what came since.
    stats.replyLatency.observe(20)
    publisher.unsafePublish({ records: 0 }, 0)
    const second = histogramState(Metrics.metrics.replyLatency, "Histo")
    expect(second.count).toBe(8)
    expect(second.buckets.at(-1)).toEqual([Infinity, 8])
    expect(second.buckets.at(-2)).toEqual([10, 7])
  })

  it("counters grow by what was counted since the last publish; link events set state and catch-ups", () => {
    const stats = new Metrics.ServerStats("Counts", 0)
    const publisher = new Metrics.Publisher(stats)
    const requests = (outcome: string) =>
      Metric.globalMetricRegistry.getCounter(MetricKey.taggedWithLabels(MetricKey.counter("herd_requests", {
        description: "Lines handled, by command and outcome",
        incremental: true
      }), [
        MetricLabel.make("server", "Counts"),
        MetricLabel.make("command", "IAMAT"),
        MetricLabel.make("outcome", outcome)
      ])).get().count
    stats.iamatStored += 3
    publisher.unsafePublish({ records: 3 }, 0)
    stats.iamatStored += 2
    publisher.unsafePublish({ records: 5 }, 0)
    publisher.unsafePublish({ records: 5 }, 0)
    expect(requests("stored")).toBe(5)
    expect(requests("not_newer")).toBe(0)

    stats.onLinkEvent({ event: "link-failed", peer: "Far", address: "127.0.0.1:1", reason: "connection refused" }, 10)
    expect(stats.link("Far")).toMatchObject({ state: "down", stateSinceMs: 10, dialFailures: 1, lastError: "connection refused" })
    stats.onLinkEvent({ event: "link-up", peer: "Far", address: "127.0.0.1:1", catchUp: 7, catchUpMs: 4, handshake: "full" }, 20)
    expect(stats.link("Far")).toMatchObject({ state: "up", stateSinceMs: 20, catchUps: 1, catchUpRecords: 7, recordsSent: 7 })
    expect(stats.link("Far").catchUpSeconds.count).toBe(1)
  })
})
